/* fuzz/fuzz_csi.c — libFuzzer target for XEP-0352's hold at the front (shard/csi.c).
 *
 * Input: byte 0 sets the hold's bounds (bits 0-3: max_stanzas 1..16; bits 4-7: max_bytes in
 * 256-byte steps), the rest is a client stream's content (stanzas, no header).
 *
 * Checks: csi_classify on the raw bytes stays inside them (a presence's key points into the
 * input). Each stanza the stream parser reads is written as the SM writes it (core/xml_write.c,
 * jabber:client as the default namespace), and the byte scan must agree with a classification of
 * the tree itself (the same rules read with xml_child): exactly, except that a scan may say urgent
 * where the writer used a prefix on an element (hoisting, the stream namespace), which it does
 * not read. Then the stanzas go through an inactive hold in order: what comes out (flushes ahead
 * of a stanza written at once, then what the end hands back) is in the order it went in, every
 * stanza comes out or was superseded by a later presence from the same sender, and the hold never
 * holds more than max_stanzas.
 */
#include <stdatomic.h>
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
#include "shard/csi.h"

#define MAX_STANZAS 64
#define NS_CLIENT "jabber:client"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *xml, size_t len)
{
    fprintf(stderr, "fuzz_csi: %s\n%.*s\n", what, (int)len, xml);
    abort();
}

/* ---- the rules, read from the tree ------------------------------------------------------------- */

static bool is(const xml_node *el, const char *ns, const char *name)
{
    return el->kind == XML_ELEMENT && strcmp(el->ns ? el->ns : "", ns) == 0 &&
           (!name || strcmp(el->name, name) == 0);
}

static bool tree_message_urgent(const xml_node *m)
{
    static const char *const urgent[][2] = {
        {NS_CLIENT, "body"}, {NS_CLIENT, "subject"}, {"urn:xmpp:eme:0", "encryption"},
        {"eu.siacs.conversations.axolotl", "encrypted"}, {"urn:xmpp:omemo:2", "encrypted"},
        {"urn:xmpp:openpgp:0", "openpgp"}, {"jabber:x:encrypted", "x"},
        {"jabber:x:conference", "x"}, {"urn:xmpp:jingle-message:0", NULL},
        {"urn:xmpp:carbons:2", "sent"},
    };
    for (const xml_node *c = m->children; c; c = c->next) {
        for (size_t i = 0; i < sizeof urgent / sizeof urgent[0]; i++)
            if (is(c, urgent[i][0], urgent[i][1]))
                return true;
        if (is(c, NS_MUC_USER, "x"))
            for (const xml_node *d = c->children; d; d = d->next)
                if (is(d, NS_MUC_USER, "invite"))
                    return true;
    }
    return false;
}

static csi_kind tree_classify(const xml_node *st)
{
    if (!is(st, NS_CLIENT, NULL))
        return CSI_URGENT;
    const char *type = xml_attr_get(st, "type");
    if (strcmp(st->name, "presence") == 0) {
        if (!type || strcmp(type, "unavailable") == 0)
            return CSI_PRESENCE;
        return strcmp(type, "error") == 0 ? CSI_LATER : CSI_URGENT;
    }
    if (strcmp(st->name, "message") != 0)
        return CSI_URGENT;
    if (type && strcmp(type, "headline") == 0)
        return CSI_LATER;
    if (type && strcmp(type, "error") == 0)
        return CSI_URGENT;
    if (tree_message_urgent(st))
        return CSI_URGENT;
    for (const xml_node *r = st->children; r; r = r->next)
        if (is(r, "urn:xmpp:carbons:2", "received"))
            for (const xml_node *f = r->children; f; f = f->next)
                if (is(f, "urn:xmpp:forward:0", "forwarded"))
                    for (const xml_node *m = f->children; m; m = m->next)
                        if (is(m, NS_CLIENT, "message") && tree_message_urgent(m))
                            return CSI_URGENT;
    return CSI_LATER;
}

/* Whether the writer put a prefix on an element's tag. */
static bool prefixed_tag(const char *xml, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (xml[i] != '<')
            continue;
        for (size_t j = i + 1; j < len && !strchr(" />", xml[j]); j++)
            if (xml[j] == ':')
                return true;
    }
    return false;
}

/* ---- stanzas --------------------------------------------------------------------------------- */

typedef struct stanzas {
    buf xml[MAX_STANZAS];
    size_t n;
} stanzas;

static void on_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    stanzas *s = ctx;
    if (s->n < MAX_STANZAS) {
        buf *b = &s->xml[s->n++];
        xml_write_node(b, st, NS_CLIENT, false);
        const char *key;
        size_t keylen;
        csi_kind scan = csi_classify(buf_data(b), buf_len(b), &key, &keylen);
        csi_kind tree = tree_classify(st);
        if (scan != tree && !(scan == CSI_URGENT && prefixed_tag(buf_data(b), buf_len(b))))
            die("the scan and the tree disagree", buf_data(b), buf_len(b));
        if (scan == CSI_PRESENCE) {
            const char *from = xml_attr_get(st, "from");
            buf esc = BUF_INIT;
            if (from)
                xml_write_attr_value(&esc, from, strlen(from));
            if (keylen != buf_len(&esc) || (keylen && memcmp(key, buf_data(&esc), keylen) != 0))
                die("a presence's key is not its from", buf_data(b), buf_len(b));
            buf_free(&esc);
        }
    }
    xml_arena_free(arena);
}

/* ---- the hold -------------------------------------------------------------------------------- */

typedef struct order {
    stanzas *in;
    size_t next;       /* stanzas before this one came out or were passed over */
    size_t out;
} order;

/* What comes out must be a later stanza than what came out before. */
static void came_out(order *o, const char *xml, size_t len)
{
    for (size_t j = o->next; j < o->in->n; j++) {
        buf *b = &o->in->xml[j];
        if (buf_len(b) == len && memcmp(buf_data(b), xml, len) == 0) {
            o->next = j + 1;
            o->out++;
            return;
        }
    }
    die("a stanza came out of order, or one that never went in", xml, len);
}

static void take_one(void *arg, outq_block *blk, size_t len)
{
    came_out(arg, outq_block_data(blk), len);
    outq_block_unref(blk);
}

static void run_hold(stanzas *in, uint8_t shape)
{
    front_csi limits = {.max_stanzas = 1 + (shape & 15), .max_bytes = 256 * (1 + (shape >> 4)),
                        .max_hold = 300};
    csi_stats stats;
    memset(&stats, 0, sizeof stats);
    csi *h = csi_new(&limits, &stats);
    csi_set_inactive(h, true);
    order o = {in, 0, 0};
    for (size_t i = 0; i < in->n; i++) {
        const char *xml = buf_data(&in->xml[i]);
        size_t len = buf_len(&in->xml[i]);
        csi_verdict v = csi_offer(h, xml, len);
        if (v == CSI_DELIVER) {
            csi_take(h, CSI_BEFORE, take_one, &o);
            came_out(&o, xml, len);
            continue;
        }
        if (csi_count(h) > limits.max_stanzas || (v == CSI_HELD_FIRST) != (csi_count(h) == 1))
            die("the hold passed its bound, or said first wrongly", xml, len);
    }
    csi_take(h, CSI_RETURN, take_one, &o);
    if (csi_count(h) != 0)
        die("the hold kept something after the end", "", 0);
    uint64_t superseded = atomic_load(&stats.superseded);
    if (o.out + superseded != in->n)
        die("a stanza was lost", "", 0);
    csi_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *key;
    size_t keylen;
    csi_kind k = csi_classify((const char *)data, size, &key, &keylen);
    if (k == CSI_PRESENCE && keylen &&
        (key < (const char *)data || key + keylen > (const char *)data + size))
        abort();
    if (size < 1 || size > 65536)
        return 0;

    static const char header[] = "<stream:stream xmlns='jabber:client' "
                                 "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    stanzas in;
    memset(&in, 0, sizeof in);
    xmlstream_handlers h = {.stanza = on_stanza};
    xmlstream *p = xmlstream_new(&h, &in, NULL);
    if (xmlstream_feed(p, header, sizeof header - 1, NULL) == XMLSTREAM_OK)
        xmlstream_feed(p, data + 1, size - 1, NULL);
    xmlstream_free(p);
    run_hold(&in, data[0]);
    for (size_t i = 0; i < in.n; i++)
        buf_free(&in.xml[i]);
    return 0;
}
