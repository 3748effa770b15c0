/* fuzz/fuzz_caps.c — libFuzzer target for XEP-0115's verification of a disco#info answer
 * (sm/caps_ver.c), what sm/mod_caps.c runs on whatever a client answers.
 *
 * Input: byte 0 sets the bounds (bits 0-5: max_items 1..64; bits 6-7: max_bytes 64, 512, 4096 or
 * 65536), the rest is a client stream's content: each stanza, or its disco#info <query/> child
 * when it has one, is verified under SHA-1 and SHA-256.
 *
 * Checks: an accepted answer gives a verification string of the hash's length, and features
 * sorted, distinct, within max_items, and within max_bytes with their separators; and the answer
 * is accepted with every element's child elements in reverse order (text kept in order) exactly
 * when it is in document order, with the same string (§5.1 sorts everything it hashes).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xml.h"
#include "core/xmlstream.h"
#include "sm/caps_ver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static caps_ver_limits limits;

static void die(const char *what, const char *ver)
{
    fprintf(stderr, "fuzz_caps: %s (%s)\n", what, ver);
    abort();
}

/* Reverses the order of el's child elements, recursively; its text stays in order, ahead of
 * them (an element's character data is its text nodes in order). */
static void reverse_children(xml_node *el)
{
    xml_node *text = NULL, *text_last = NULL, *rev = NULL, *rev_last = NULL;
    for (xml_node *c = el->children, *next; c; c = next) {
        next = c->next;
        c->next = NULL;
        if (c->kind == XML_TEXT) {
            *(text_last ? &text_last->next : &text) = c;
            text_last = c;
            continue;
        }
        reverse_children(c);
        c->next = rev;
        if (!rev)
            rev_last = c;
        rev = c;
    }
    if (text_last)
        text_last->next = rev;
    el->children = text ? text : rev;
    el->last_child = rev ? rev_last : text_last;
}

static void check_result(caps_hash h, const caps_ver_result *r)
{
    if (strlen(r->ver) != caps_ver_len(h))
        die("verification string of the wrong length", r->ver);
    if (r->nfeatures > limits.max_items)
        die("more features than max_items", r->ver);
    size_t bytes = 0;
    for (size_t i = 0; i < r->nfeatures; i++) {
        bytes += strlen(r->features[i]) + 1;
        if (i && strcmp(r->features[i - 1], r->features[i]) >= 0)
            die("features not sorted and distinct", r->features[i]);
    }
    if (bytes > limits.max_bytes)
        die("features past max_bytes", r->ver);
}

static void verify(xml_node *query)
{
    for (caps_hash h = CAPS_SHA1; h <= CAPS_SHA256; h++) {
        xml_arena *scratch = xml_arena_new(1024);
        caps_ver_result first, again;
        caps_ver_status s1 = caps_ver(query, h, &limits, scratch, &first);
        if (s1 == CAPS_VER_OK)
            check_result(h, &first);
        reverse_children(query);
        caps_ver_status s2 = caps_ver(query, h, &limits, scratch, &again);
        reverse_children(query);
        if ((s1 == CAPS_VER_OK) != (s2 == CAPS_VER_OK))
            die("accepted in one order only", first.ver);
        if (s1 == CAPS_VER_OK && strcmp(first.ver, again.ver) != 0)
            die("the order of the answer changed its string", again.ver);
        xml_arena_free(scratch);
    }
}

static void on_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    xml_node *query = xml_child(st, CAPS_NS_DISCO_INFO, "query");
    verify(query ? query : st);
    xml_arena_free(arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char header[] = "<stream:stream xmlns='jabber:client' "
                                 "xmlns:stream='http://etherx.jabber.org/streams'>";
    static const size_t bytes[] = {64, 512, 4096, 65536};
    if (size < 1)
        return 0;
    limits.max_items = 1 + (data[0] & 63);
    limits.max_bytes = bytes[data[0] >> 6];
    xmlstream_handlers h = {.stanza = on_stanza};
    xmlstream *p = xmlstream_new(&h, NULL, NULL);
    if (xmlstream_feed(p, header, sizeof header - 1, NULL) == XMLSTREAM_OK)
        xmlstream_feed(p, data + 1, size - 1, NULL);
    xmlstream_free(p);
    return 0;
}
