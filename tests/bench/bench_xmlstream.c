/* tests/bench/bench_xmlstream.c — stream parser and serializer throughput, and what a parser costs
 * in memory, on a generated client stream of message, presence and iq stanzas. The serializer is
 * also timed alone, on the stanzas of that stream parsed once and kept. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/xml.h"
#include "core/xml_write.h"
#include "core/xmlmem.h"
#include "core/xmlstream.h"

#define STREAM_BYTES (8u << 20)
#define IDLE_PARSERS 1000

static const char header[] = "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' "
                             "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>\n";

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void put(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void append_text(buf *b, size_t len)
{
    static const char *words[] = {"hello", "there", "caf\xc3\xa9", "&amp;", "&lt;3", "\xe2\x82\xac", "why",
                                  "\xf0\x9f\x98\x80", "meeting", "tomorrow", "at", "noon", "ok?", "\xd0\xbf\xd1\x80\xd0\xb8"};
    size_t start = buf_len(b);
    while (buf_len(b) - start < len) {
        put(b, words[rng() % (sizeof(words) / sizeof(words[0]))]);
        buf_append(b, " ", 1);
    }
}

static void append_stanza(buf *b, unsigned n)
{
    char s[512];
    switch (rng() % 10) {
    case 0: case 1: case 2: case 3: case 4:
        snprintf(s, sizeof(s), "<message to='user%u@example.net' type='chat' id='msg-%u'><body>", rng() % 1000, n);
        put(b, s);
        append_text(b, 20 + rng() % 400);
        put(b, "</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                              "<request xmlns='urn:xmpp:receipts'/></message>\n");
        break;
    case 5: case 6: case 7:
        put(b, "<presence><show>away</show><status>");
        append_text(b, 10 + rng() % 40);
        put(b, "</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' "
                              "hash='sha-1' node='https://conversations.im' ver='QXF5pSe3YDPKCJsdmC3RYkT8fXY='/>"
                              "<x xmlns='vcard-temp:x:update'><photo>01b87fcd030b72895ff8e88db57ec525450f000d"
                              "</photo></x></presence>\n");
        break;
    case 8:
        snprintf(s, sizeof(s), "<iq type='get' id='ping-%u' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq> ", n);
        put(b, s);
        break;
    default:
        snprintf(s, sizeof(s), "<iq type='result' id='disco-%u' to='user@example.net/res'>"
                               "<query xmlns='http://jabber.org/protocol/disco#info'>"
                               "<identity category='client' type='phone' name='Conversations'/>", n);
        put(b, s);
        static const char *features[] = {"urn:xmpp:ping", "urn:xmpp:receipts", "jabber:iq:version",
                                         "http://jabber.org/protocol/caps", "urn:xmpp:jingle:1",
                                         "http://jabber.org/protocol/chatstates", "urn:xmpp:time"};
        for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
            snprintf(s, sizeof(s), "<feature var='%s'/>", features[i]);
            put(b, s);
        }
        put(b, "</query></iq>\n");
        break;
    }
}

typedef struct counter {
    unsigned long stanzas;
    buf *out; /* serialize each stanza here when set */
} counter;

static void count_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    counter *c = ctx;
    c->stanzas++;
    if (c->out) {
        buf_consume(c->out, buf_len(c->out));
        xml_write_node(c->out, stanza, "jabber:client", true);
    }
    xml_arena_free(arena);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best of three parses of the whole stream in chunks of chunk bytes. */
static void bench_parse(const char *label, const buf *in, size_t chunk, bool serialize)
{
    double best = 1e9;
    unsigned long stanzas = 0;
    buf out = BUF_INIT;
    for (int round = 0; round < 3; round++) {
        counter c = {0, serialize ? &out : NULL};
        xmlstream_handlers h = {.stanza = count_stanza};
        xmlstream *p = xmlstream_new(&h, &c, NULL);
        double t0 = now();
        size_t len = buf_len(in);
        for (size_t off = 0; off < len; off += chunk) {
            size_t n = len - off < chunk ? len - off : chunk;
            if (xmlstream_feed(p, buf_data(in) + off, n, NULL) != XMLSTREAM_OK) {
                fprintf(stderr, "bench: parse failed: %s\n", xmlstream_get_error(p)->text);
                exit(1);
            }
        }
        double t = now() - t0;
        if (t < best)
            best = t;
        stanzas = c.stanzas;
        xmlstream_free(p);
    }
    buf_free(&out);
    printf("%-34s %8.1f MB/s %10.0f stanzas/s  (%lu stanzas, %.1f MB)\n", label,
           (double)buf_len(in) / best / 1e6, (double)stanzas / best, stanzas, (double)buf_len(in) / 1e6);
}

typedef struct keeper {
    xml_node **stanzas;
    xml_arena **arenas;
    size_t n, cap;
} keeper;

static void keep_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    keeper *k = ctx;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 1024;
        k->stanzas = realloc(k->stanzas, k->cap * sizeof(*k->stanzas));
        k->arenas = realloc(k->arenas, k->cap * sizeof(*k->arenas));
        if (!k->stanzas || !k->arenas)
            abort();
    }
    k->stanzas[k->n] = stanza;
    k->arenas[k->n++] = arena;
}

/* Best of ten rounds serializing every stanza of the stream (already parsed), as the front and
 * the SM do for each stanza they pass on. */
static void bench_serialize(const buf *in)
{
    keeper k = {0};
    xmlstream_handlers h = {.stanza = keep_stanza};
    xmlstream *p = xmlstream_new(&h, &k, NULL);
    if (xmlstream_feed(p, buf_data(in), buf_len(in), NULL) != XMLSTREAM_OK)
        exit(1);
    xmlstream_free(p);
    buf out = BUF_INIT;
    double best = 1e9;
    size_t bytes = 0;
    for (int round = 0; round < 10; round++) {
        bytes = 0;
        double t0 = now();
        for (size_t i = 0; i < k.n; i++) {
            buf_consume(&out, buf_len(&out));
            xml_write_node(&out, k.stanzas[i], "jabber:client", true);
            bytes += buf_len(&out);
        }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("%-34s %8.1f MB/s %10.0f stanzas/s  (%zu stanzas, %.1f MB out)\n", "serialize alone",
           (double)bytes / best / 1e6, (double)k.n / best, k.n, (double)bytes / 1e6);
    for (size_t i = 0; i < k.n; i++)
        xml_arena_free(k.arenas[i]);
    free(k.stanzas);
    free(k.arenas);
    buf_free(&out);
}

/* The heap's bytes in use and what expat parsers hold apart from it (core/xmlmem). */
static size_t heap_in_use(void)
{
    xmlmem_stats x;
    xmlmem_get_stats(&x);
    return mallinfo2().uordblks + x.bytes_in_use;
}

/* What idle parsers cost: right after the stream header, and after xmlstream_shrink. */
static void bench_memory(void)
{
    static xmlstream *parsers[IDLE_PARSERS];
    xmlstream_handlers h = {0};
    size_t base = heap_in_use();
    for (int i = 0; i < IDLE_PARSERS; i++)
        parsers[i] = xmlstream_new(&h, NULL, NULL);
    size_t fresh = heap_in_use();
    for (int i = 0; i < IDLE_PARSERS; i++)
        xmlstream_feed(parsers[i], header, sizeof(header) - 1, NULL);
    size_t after_header = heap_in_use();
    for (int i = 0; i < IDLE_PARSERS; i++)
        xmlstream_shrink(parsers[i]);
    size_t shrunk = heap_in_use();
    for (int i = 0; i < IDLE_PARSERS; i++)
        xmlstream_free(parsers[i]);
    printf("memory per parser: %zu bytes new, %zu bytes after the stream header, %zu bytes shrunk\n",
           (fresh - base) / IDLE_PARSERS, (after_header - base) / IDLE_PARSERS, (shrunk - base) / IDLE_PARSERS);
}

/* The price of shrinking: a shrink and the rebuild the next stanza pays for. */
static void bench_shrink(void)
{
    static const char stanza[] = "<presence/>";
    const int rounds = 100000;
    double t[2];
    for (int shrink = 0; shrink < 2; shrink++) {
        counter c = {0, NULL};
        xmlstream_handlers h = {.stanza = count_stanza};
        xmlstream *p = xmlstream_new(&h, &c, NULL);
        xmlstream_feed(p, header, sizeof(header) - 1, NULL);
        double t0 = now();
        for (int i = 0; i < rounds; i++) {
            if (shrink)
                xmlstream_shrink(p);
            xmlstream_feed(p, stanza, sizeof(stanza) - 1, NULL);
        }
        t[shrink] = now() - t0;
        xmlstream_free(p);
    }
    printf("shrink + rebuild: %.2f us each (a small stanza alone: %.2f us)\n", (t[1] - t[0]) / rounds * 1e6,
           t[0] / rounds * 1e6);
}

int main(void)
{
    buf in = BUF_INIT;
    put(&in, header);
    for (unsigned n = 0; buf_len(&in) < STREAM_BYTES; n++)
        append_stanza(&in, n);

    bench_parse("parse, one chunk", &in, buf_len(&in), false);
    bench_parse("parse, 4096-byte chunks", &in, 4096, false);
    bench_parse("parse, 64-byte chunks", &in, 64, false);
    bench_parse("parse + serialize, 4096-byte chunks", &in, 4096, true);
    bench_serialize(&in);
    bench_memory();
    bench_shrink();
    buf_free(&in);
    return 0;
}
