/* fuzz/fuzz_xmlstream.c — libFuzzer target for the stream parser and the serializer.
 *
 * Input: byte 0 picks the chunking (bits 0-1: whole, fixed size, varying sizes, one byte at a
 * time), whether to shrink the parser after every feed (bit 2) and whether to use small limits
 * (bit 3); byte 1 sizes the chunks and the chunked run's parser renewal threshold; the rest is the
 * stream. Stanzas in the TLS and SASL namespaces trigger a restart: stop, reset, feed the rest, as a
 * server does.
 *
 * Checks: the chunked (shrunk, renewed) run reports exactly what a run fed everything at once
 * reports, lines included, and ends the same way; every stanza serializes to XML that the parser
 * reads back as the same tree, which serializes to the same bytes; the serialization is at most
 * AMPLIFICATION times the stanza's input plus its stream header's (core/xml_write.h proves 16);
 * and the bounded writer takes it with exactly that many bytes and refuses it, untouched, with one
 * fewer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xml.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"

/* The serializer's bound (core/xml_write.h): output <= 16 x (stanza + header declarations). */
#define AMPLIFICATION 16

typedef struct run {
    xmlstream *stream;
    buf log;
    char *content_ns;
    size_t header_bytes; /* input bytes of the current stream's header */
    bool round_trip;
} run;

static void put(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* The contents of b as a string: a NUL goes into the reserved space after the data. */
static const char *cstr(buf *b)
{
    *buf_reserve(b, 1) = '\0';
    return buf_data(b);
}

static void die(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "fuzz_xmlstream: %s\n--- first:\n%s\n--- second:\n%s\n", what, a ? a : "", b ? b : "");
    abort();
}

/* ---- reading one serialized stanza back ---------------------------------------------------------- */

typedef struct reread {
    xml_node *stanza;
    xml_arena *arena;
    unsigned stanzas;
} reread;

static void reread_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    reread *r = ctx;
    if (r->stanzas++ == 0) {
        r->stanza = stanza;
        r->arena = arena;
    } else {
        xml_arena_free(arena);
    }
}

static bool same_tree(const xml_node *a, const xml_node *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == XML_TEXT)
        return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
    if (strcmp(a->ns, b->ns) != 0 || strcmp(a->name, b->name) != 0 || a->nattrs != b->nattrs)
        return false;
    for (uint32_t i = 0; i < a->nattrs; i++) {
        const xml_attr *x = &a->attrs[i], *y = &b->attrs[i];
        if (strcmp(x->ns ? x->ns : "", y->ns ? y->ns : "") != 0 || strcmp(x->name, y->name) != 0 ||
            strcmp(x->value, y->value) != 0)
            return false;
    }
    const xml_node *ca = a->children, *cb = b->children;
    for (; ca && cb; ca = ca->next, cb = cb->next)
        if (!same_tree(ca, cb))
            return false;
    return !ca && !cb;
}

/* The bounded writer: exactly enough room writes the same bytes, one byte less writes nothing. */
static void check_bounded(const xml_node *stanza, const char *content_ns, bool in_stream, const buf *full)
{
    buf b = BUF_INIT;
    buf_append(&b, "x", 1);
    if (xml_write_node_max(&b, stanza, content_ns, in_stream, buf_len(full) - 1) || buf_len(&b) != 1)
        die("the bounded writer went past its limit", cstr((buf *)full), cstr(&b));
    if (!xml_write_node_max(&b, stanza, content_ns, in_stream, buf_len(full)) ||
        buf_len(&b) != buf_len(full) + 1 || memcmp(buf_data(&b) + 1, buf_data(full), buf_len(full)) != 0)
        die("the bounded writer refused what fits", cstr((buf *)full), cstr(&b));
    buf_free(&b);
}

/* Both ways a stanza is written (inside a stream, as the front writes to clients; standalone, as
 * the front writes to the SM) stay within the bound. */
static void check_amplification(const xml_node *stanza, const char *content_ns, size_t input)
{
    for (int in_stream = 0; in_stream < 2; in_stream++) {
        buf out = BUF_INIT;
        xml_write_node(&out, stanza, in_stream ? content_ns : NULL, in_stream);
        if (buf_len(&out) > AMPLIFICATION * input) {
            char what[96];
            snprintf(what, sizeof(what), "%zu bytes out of %zu in (stanza and header)", buf_len(&out), input);
            die(what, cstr(&out), NULL);
        }
        check_bounded(stanza, in_stream ? content_ns : NULL, in_stream, &out);
        buf_free(&out);
    }
}

static void check_round_trip(const xml_node *stanza, const char *content_ns)
{
    buf doc = BUF_INIT, again = BUF_INIT;
    xml_stream_attrs open = {.content_ns = content_ns};
    xml_write_stream_open(&doc, &open);
    size_t start = buf_len(&doc);
    xml_write_node(&doc, stanza, content_ns, true);
    const char *written = cstr(&doc) + start;
    size_t written_len = buf_len(&doc) - start;

    xmlstream_limits unlimited = {SIZE_MAX, ~0u, ~0u, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    xmlstream_handlers h = {.stanza = reread_stanza};
    reread r = {0};
    xmlstream *p = xmlstream_new(&h, &r, &unlimited);
    xmlstream_status st = xmlstream_feed(p, buf_data(&doc), buf_len(&doc), NULL);
    if (st != XMLSTREAM_OK || r.stanzas != 1)
        die(st == XMLSTREAM_FAILED ? xmlstream_get_error(p)->text : "not exactly one stanza back", written, NULL);
    if (!same_tree(stanza, r.stanza))
        die("the serialization reads back as another tree", written, NULL);
    xml_write_node(&again, r.stanza, content_ns, true);
    if (buf_len(&again) != written_len || memcmp(buf_data(&again), written, written_len) != 0)
        die("serializing the read-back tree gives other bytes", written, cstr(&again));
    xml_arena_free(r.arena);
    xmlstream_free(p);
    buf_free(&doc);
    buf_free(&again);
}

/* ---- the runs ------------------------------------------------------------------------------------ */

static void log_line(buf *log, char kind, uint32_t line)
{
    char s[24];
    snprintf(s, sizeof(s), "%c%u:", kind, (unsigned)line);
    put(log, s);
}

static void on_header(void *ctx, const xml_node *root, const char *content_ns)
{
    run *r = ctx;
    log_line(&r->log, 'H', root->line);
    xml_write_node(&r->log, root, "", false);
    put(&r->log, " content=");
    put(&r->log, content_ns);
    put(&r->log, "\n");
    free(r->content_ns);
    r->content_ns = strdup(content_ns);
    r->header_bytes = xmlstream_reported_bytes(r->stream);
}

static void on_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    run *r = ctx;
    log_line(&r->log, 'S', stanza->line);
    xml_write_node(&r->log, stanza, r->content_ns, true);
    put(&r->log, "\n");
    if (r->round_trip) {
        check_round_trip(stanza, r->content_ns);
        check_amplification(stanza, r->content_ns, xmlstream_reported_bytes(r->stream) + r->header_bytes);
    }
    if (strcmp(stanza->ns, "urn:ietf:params:xml:ns:xmpp-tls") == 0 ||
        strcmp(stanza->ns, "urn:ietf:params:xml:ns:xmpp-sasl") == 0)
        xmlstream_stop(r->stream);
    xml_arena_free(arena);
}

static void on_close(void *ctx)
{
    put(&((run *)ctx)->log, "C\n");
}

static const xmlstream_handlers handlers = {on_header, on_stanza, on_close};

/* Feeds one chunk, answering stops with a restart; returns OK, CLOSED or FAILED. */
static xmlstream_status feed_chunk(run *r, const uint8_t *data, size_t len, bool shrink)
{
    for (;;) {
        size_t used = 0;
        xmlstream_status st = xmlstream_feed(r->stream, data, len, &used);
        if (shrink)
            xmlstream_shrink(r->stream);
        if (st != XMLSTREAM_STOPPED)
            return st;
        if (used > len)
            die("consumed more than fed", NULL, NULL);
        put(&r->log, "R\n");
        xmlstream_reset(r->stream);
        data += used;
        len -= used;
        if (!len)
            return XMLSTREAM_OK;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t mode = data[0], param = data[1];
    data += 2;
    size -= 2;
    xmlstream_limits limits;
    xmlstream_limits_default(&limits);
    if (mode & 8)
        limits = (xmlstream_limits){512, 4, 4, 64, 128, 256, 1024};

    run whole = {.stream = xmlstream_new(&handlers, &whole, &limits)};
    xmlstream_status whole_st = feed_chunk(&whole, data, size, false);

    /* The chunked run also renews its parser often (after 0 to 1008 bytes of start tags), which must
     * not change what it reports. */
    limits.renew_tag_bytes = (size_t)(param & 0x3f) * 16;
    run cut = {.stream = xmlstream_new(&handlers, &cut, &limits), .round_trip = true};
    xmlstream_status cut_st = XMLSTREAM_OK;
    uint32_t rng = param * 2654435761u + 1;
    for (size_t off = 0; off < size && cut_st == XMLSTREAM_OK;) {
        size_t n;
        switch (mode & 3) {
        case 0: n = size; break;
        case 1: n = (size_t)param + 1; break;
        case 2:
            rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
            n = 1 + rng % 64;
            break;
        default: n = 1; break;
        }
        if (n > size - off)
            n = size - off;
        cut_st = feed_chunk(&cut, data + off, n, mode & 4);
        off += n;
    }

    if (strcmp(cstr(&whole.log), cstr(&cut.log)) != 0)
        die("chunked input gave other events", cstr(&whole.log), cstr(&cut.log));
    if (whole_st != cut_st)
        die("chunked input ended otherwise", cstr(&whole.log), cstr(&cut.log));
    if (whole_st == XMLSTREAM_FAILED) {
        /* A too-large stanza may be noticed before (in small chunks) or after (all at once) a
         * syntax error further on in it; any other difference is a bug. */
        xmlstream_condition a = xmlstream_get_error(whole.stream)->condition;
        xmlstream_condition b = xmlstream_get_error(cut.stream)->condition;
        if (a != b && a != XMLSTREAM_ERR_POLICY_VIOLATION && b != XMLSTREAM_ERR_POLICY_VIOLATION)
            die("chunked input failed otherwise", xmlstream_condition_name(a), xmlstream_condition_name(b));
    }

    for (run *r = &whole; r; r = r == &whole ? &cut : NULL) {
        xmlstream_free(r->stream);
        buf_free(&r->log);
        free(r->content_ns);
    }
    return 0;
}
