/* tests/unit/test_csi.c — XEP-0352's hold at the front (shard/csi.c): which stanzas can wait,
 * read from the SM's own serialization of them; presence superseded per sender; the order of a
 * flush; the bounds; the counters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"
#include "shard/csi.h"

/* ---- stanzas as the SM writes them --------------------------------------------------------------- */

static void keep_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    xml_write_node(ctx, st, "jabber:client", false);
    xml_arena_free(arena);
}

/* xml (one stanza, as a client would write it) parsed and written as the SM writes it for a
 * client: returned as a string the caller frees. */
static char *sm_form(const char *xml)
{
    static const char header[] = "<stream:stream xmlns='jabber:client' "
                                 "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    buf out = BUF_INIT;
    xmlstream_handlers h = {.stanza = keep_stanza};
    xmlstream *p = xmlstream_new(&h, &out, NULL);
    assert_int_equal(xmlstream_feed(p, header, sizeof header - 1, NULL), XMLSTREAM_OK);
    assert_int_equal(xmlstream_feed(p, xml, strlen(xml), NULL), XMLSTREAM_OK);
    xmlstream_free(p);
    assert_true(buf_len(&out) > 0);
    char *r = strndup(buf_data(&out), buf_len(&out));
    buf_free(&out);
    return r;
}

static csi_kind kind_of(const char *client_xml)
{
    char *x = sm_form(client_xml);
    const char *key;
    size_t keylen;
    csi_kind k = csi_classify(x, strlen(x), &key, &keylen);
    free(x);
    return k;
}

#define CHATSTATES "http://jabber.org/protocol/chatstates"

static void test_classify_presence(void **state)
{
    char *x = sm_form("<presence from='a@example.com/r' to='u@example.com/res'><show>away</show>"
                      "<status>it&apos;s late</status></presence>");
    const char *key;
    size_t keylen;
    assert_int_equal(csi_classify(x, strlen(x), &key, &keylen), CSI_PRESENCE);
    assert_int_equal(keylen, strlen("a@example.com/r"));
    assert_memory_equal(key, "a@example.com/r", keylen);
    free(x);
    assert_int_equal(kind_of("<presence from='a@example.com/r' type='unavailable'/>"), CSI_PRESENCE);
    /* Without a from: still an update, superseding nothing. */
    x = sm_form("<presence/>");
    assert_int_equal(csi_classify(x, strlen(x), &key, &keylen), CSI_PRESENCE);
    assert_int_equal(keylen, 0);
    free(x);
    /* A person asks, or the server must answer. */
    assert_int_equal(kind_of("<presence from='a@example.com' type='subscribe'/>"), CSI_URGENT);
    assert_int_equal(kind_of("<presence from='a@example.com' type='subscribed'/>"), CSI_URGENT);
    assert_int_equal(kind_of("<presence from='a@example.com' type='unsubscribed'/>"), CSI_URGENT);
    assert_int_equal(kind_of("<presence from='a@example.com' type='probe'/>"), CSI_URGENT);
    assert_int_equal(kind_of("<presence from='a@example.com' type='error'><error type='cancel'>"
                             "<gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"),
                     CSI_LATER);
}

static void test_classify_message(void **state)
{
    /* Nothing a person waits for. */
    assert_int_equal(kind_of("<message type='chat'><composing xmlns='" CHATSTATES "'/></message>"),
                     CSI_LATER);
    assert_int_equal(kind_of("<message><received xmlns='urn:xmpp:receipts' id='x'/></message>"),
                     CSI_LATER);
    assert_int_equal(kind_of("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>"),
                     CSI_LATER);
    assert_int_equal(kind_of("<message type='headline'><body>news</body></message>"), CSI_LATER);
    assert_int_equal(kind_of("<message><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                             "<items node='urn:xmpp:avatar:metadata'/></event></message>"), CSI_LATER);
    /* A body or a subject, in the message itself. */
    assert_int_equal(kind_of("<message type='chat'><body>hi</body><active xmlns='" CHATSTATES "'/>"
                             "</message>"), CSI_URGENT);
    assert_int_equal(kind_of("<message type='groupchat'><subject>topic</subject></message>"),
                     CSI_URGENT);
    assert_int_equal(kind_of("<message type='error'><error type='cancel'/></message>"), CSI_URGENT);
    /* Encrypted, invitations, calls, and carbons of the user's own messages. */
    assert_int_equal(kind_of("<message><encrypted xmlns='eu.siacs.conversations.axolotl'>"
                             "<header sid='1'/></encrypted></message>"), CSI_URGENT);
    assert_int_equal(kind_of("<message><encrypted xmlns='urn:xmpp:omemo:2'/></message>"), CSI_URGENT);
    assert_int_equal(kind_of("<message><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp></message>"),
                     CSI_URGENT);
    assert_int_equal(kind_of("<message><encryption xmlns='urn:xmpp:eme:0' namespace='x'/></message>"),
                     CSI_URGENT);
    assert_int_equal(kind_of("<message><x xmlns='jabber:x:conference' jid='room@muc'/></message>"),
                     CSI_URGENT);
    assert_int_equal(kind_of("<message><x xmlns='http://jabber.org/protocol/muc#user'>"
                             "<invite from='a@example.com'/></x></message>"), CSI_URGENT);
    assert_int_equal(kind_of("<message><x xmlns='http://jabber.org/protocol/muc#user'>"
                             "<status code='104'/></x></message>"), CSI_LATER);
    assert_int_equal(kind_of("<message><propose xmlns='urn:xmpp:jingle-message:0' id='c'>"
                             "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>"
                             "</propose></message>"), CSI_URGENT);
    assert_int_equal(kind_of("<message><sent xmlns='urn:xmpp:carbons:2'/></message>"), CSI_URGENT);
    /* A carbon of a message to the user is judged by that message. */
    assert_int_equal(kind_of("<message><received xmlns='urn:xmpp:carbons:2'><forwarded "
                             "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'>"
                             "<body>hi</body></message></forwarded></received></message>"), CSI_URGENT);
    assert_int_equal(kind_of("<message><received xmlns='urn:xmpp:carbons:2'><forwarded "
                             "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'>"
                             "<gone xmlns='" CHATSTATES "'/></message></forwarded></received></message>"),
                     CSI_LATER);
    /* A body elsewhere is not the message's body, nor is one inside text. */
    assert_int_equal(kind_of("<message><x xmlns='urn:example'><body>no</body></x></message>"),
                     CSI_LATER);
    assert_int_equal(kind_of("<message><html xmlns='http://jabber.org/protocol/xhtml-im'><body "
                             "xmlns='http://www.w3.org/1999/xhtml'>x</body></html></message>"),
                     CSI_LATER);
    assert_int_equal(kind_of("<message><thread>&lt;body&gt;x&lt;/body&gt;</thread>"
                             "<paused xmlns='" CHATSTATES "'/></message>"), CSI_LATER);
    assert_int_equal(kind_of("<message><x xmlns='urn:example' a='&apos;&lt;body&gt;'/></message>"),
                     CSI_LATER);
}

static void test_classify_other(void **state)
{
    assert_int_equal(kind_of("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"), CSI_URGENT);
    assert_int_equal(kind_of("<iq type='result' id='p'/>"), CSI_URGENT);
    /* Not the SM's form, or not a stanza: written at once. */
    static const char *const odd[] = {
        "",
        "<message>",
        "<message><composing xmlns='" CHATSTATES "'/>",
        "<message/><message/>",
        "<message/>trailing",
        "text<message/>",
        "<message type=\"headline\"/>",
        "<message type='headline/>",
        "<message></presence>",
        "<foo/>",
        "<message xmlns='jabber:server'/>",
        "<message xmlns:h1='" CHATSTATES "'><h1:composing/></message>",
        "<stream:message/>",
        "<message type='headline'",
        "</message>",
        "<?xml version='1.0'?><message/>",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *key;
        size_t keylen;
        if (csi_classify(odd[i], strlen(odd[i]), &key, &keylen) != CSI_URGENT)
            fail_msg("not urgent: %s", odd[i]);
    }
    /* What a hold would take, raw. */
    const char *key;
    size_t keylen;
    const char later[] = "<message type='headline'><x xmlns='urn:a'><y/></x></message>";
    assert_int_equal(csi_classify(later, strlen(later), &key, &keylen), CSI_LATER);
}

/* ---- the hold -------------------------------------------------------------------------------- */

typedef struct taken {
    char *xml[32];
    size_t n;
} taken;

static void take_into(void *arg, outq_block *blk, size_t len)
{
    taken *t = arg;
    assert_true(t->n < 32);
    t->xml[t->n++] = strndup(outq_block_data(blk), len);
    outq_block_unref(blk);
}

static void taken_free(taken *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->xml[i]);
    t->n = 0;
}

static front_csi limits;
static csi_stats stats;

static int setup(void **state)
{
    limits = (front_csi){.max_stanzas = 100, .max_bytes = 65536, .max_hold = 300};
    memset(&stats, 0, sizeof stats);
    return 0;
}

static csi_verdict offer(csi *h, const char *xml)
{
    return csi_offer(h, xml, strlen(xml));
}

#define PRES_A1 "<presence from='a@example.com/r'><show>away</show></presence>"
#define PRES_A2 "<presence from='a@example.com/r'/>"
#define PRES_A_OTHER "<presence from='a@example.com/r2'/>"
#define PRES_B1 "<presence from='b@example.com/r' type='unavailable'/>"
#define STATE_B "<message from='b@example.com/r' type='chat'><composing xmlns='" CHATSTATES "'/></message>"
#define BODY_B "<message from='b@example.com/r' type='chat'><body>hi</body></message>"

static void test_active_holds_nothing(void **state)
{
    csi *h = csi_new(&limits, &stats);
    assert_false(csi_inactive(h));
    assert_int_equal(offer(h, PRES_A1), CSI_DELIVER);
    assert_int_equal(csi_count(h), 0);
    csi_set_inactive(h, true);
    assert_int_equal(offer(h, PRES_A1), CSI_HELD_FIRST);
    csi_set_inactive(h, false);
    /* Back to active: the caller flushes on <active/>; new stanzas go at once. */
    assert_int_equal(offer(h, STATE_B), CSI_DELIVER);
    assert_int_equal(csi_count(h), 1);
    csi_free(h);
    assert_int_equal(atomic_load(&stats.held), 1);
}

static void test_superseded_and_order(void **state)
{
    csi *h = csi_new(&limits, &stats);
    csi_set_inactive(h, true);
    assert_int_equal(offer(h, PRES_A1), CSI_HELD_FIRST);
    assert_int_equal(offer(h, PRES_B1), CSI_HELD);
    assert_int_equal(offer(h, STATE_B), CSI_HELD);
    assert_int_equal(offer(h, PRES_A_OTHER), CSI_HELD);   /* another resource: its own */
    assert_int_equal(offer(h, PRES_A2), CSI_HELD);        /* drops A1, goes last */
    assert_int_equal(csi_count(h), 4);
    assert_int_equal(atomic_load(&stats.superseded), 1);
    assert_int_equal(atomic_load(&stats.superseded_bytes), strlen(PRES_A1));
    /* A body: everything held first, in order, then the body (the caller writes it). */
    assert_int_equal(offer(h, BODY_B), CSI_DELIVER);
    taken t = {0};
    csi_take(h, CSI_BEFORE, take_into, &t);
    assert_int_equal(t.n, 4);
    assert_string_equal(t.xml[0], PRES_B1);
    assert_string_equal(t.xml[1], STATE_B);
    assert_string_equal(t.xml[2], PRES_A_OTHER);
    assert_string_equal(t.xml[3], PRES_A2);
    assert_int_equal(csi_count(h), 0);
    assert_int_equal(atomic_load(&stats.held), 5);
    assert_int_equal(atomic_load(&stats.flushes), 1);
    assert_int_equal(atomic_load(&stats.flushed_bytes),
                     strlen(PRES_B1) + strlen(STATE_B) + strlen(PRES_A_OTHER) + strlen(PRES_A2));
    /* Four rode with the body's write, one was never written. */
    assert_int_equal(atomic_load(&stats.wakeups_saved), 5);
    taken_free(&t);
    /* The next hold starts afresh (the caller arms its timer again). */
    assert_int_equal(offer(h, PRES_A1), CSI_HELD_FIRST);
    csi_take(h, CSI_ALONE, take_into, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(atomic_load(&stats.wakeups_saved), 5);   /* alone: its own write */
    assert_int_equal(atomic_load(&stats.flushes), 2);
    taken_free(&t);
    csi_free(h);
}

static void test_bounds(void **state)
{
    limits.max_stanzas = 3;
    csi *h = csi_new(&limits, &stats);
    csi_set_inactive(h, true);
    offer(h, PRES_A1);
    offer(h, PRES_B1);
    offer(h, STATE_B);
    /* A fourth would pass max_stanzas: it goes, and takes the three with it. */
    assert_int_equal(offer(h, PRES_A_OTHER), CSI_DELIVER);
    assert_int_equal(csi_count(h), 3);
    /* A presence that supersedes one does not count twice. */
    assert_int_equal(offer(h, PRES_A2), CSI_HELD);
    assert_int_equal(csi_count(h), 3);
    taken t = {0};
    csi_take(h, CSI_BEFORE, take_into, &t);
    taken_free(&t);
    /* Bytes: one that would pass max_bytes goes at once. */
    limits.max_stanzas = 100;
    limits.max_bytes = strlen(PRES_A1) + strlen(STATE_B);
    assert_int_equal(offer(h, PRES_A1), CSI_HELD_FIRST);
    assert_int_equal(offer(h, STATE_B), CSI_HELD);
    assert_int_equal(offer(h, PRES_B1), CSI_DELIVER);
    csi_free(h);   /* drops what is held */
}

static void test_return_is_not_a_flush(void **state)
{
    csi *h = csi_new(&limits, &stats);
    csi_set_inactive(h, true);
    offer(h, STATE_B);
    offer(h, PRES_A1);
    taken t = {0};
    csi_take(h, CSI_RETURN, take_into, &t);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.xml[0], STATE_B);
    assert_string_equal(t.xml[1], PRES_A1);
    assert_int_equal(atomic_load(&stats.flushes), 0);
    assert_int_equal(atomic_load(&stats.flushed_bytes), 0);
    assert_int_equal(atomic_load(&stats.wakeups_saved), 0);
    taken_free(&t);
    /* Nothing held, or no csi at all: nothing happens. */
    csi_take(h, CSI_ALONE, take_into, &t);
    csi_take(NULL, CSI_RETURN, take_into, &t);
    assert_int_equal(t.n, 0);
    assert_int_equal(atomic_load(&stats.flushes), 0);
    csi_free(h);
    csi_free(NULL);
}

/* Held bytes are the hold's own: the caller's buffer may go (a link read block is reused). */
static void test_held_is_a_copy(void **state)
{
    csi *h = csi_new(&limits, &stats);
    csi_set_inactive(h, true);
    char *x = strdup(PRES_A1);
    offer(h, x);
    memset(x, 'z', strlen(x));
    free(x);
    x = strdup(PRES_A2);
    assert_int_equal(offer(h, x), CSI_HELD_FIRST);   /* still found by its from, and superseded */
    free(x);
    taken t = {0};
    csi_take(h, CSI_ALONE, take_into, &t);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.xml[0], PRES_A2);
    taken_free(&t);
    csi_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_presence),
        cmocka_unit_test(test_classify_message),
        cmocka_unit_test(test_classify_other),
        cmocka_unit_test_setup(test_active_holds_nothing, setup),
        cmocka_unit_test_setup(test_superseded_and_order, setup),
        cmocka_unit_test_setup(test_bounds, setup),
        cmocka_unit_test_setup(test_return_is_not_a_flush, setup),
        cmocka_unit_test_setup(test_held_is_a_copy, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
