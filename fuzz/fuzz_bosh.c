/* fuzz/fuzz_bosh.c — libFuzzer target for a BOSH session (shard/bosh.c).
 *
 * Input: byte 0 sets the limits (bit 0: hold_max 0 or 1; bits 1-2: requests 1..4; bit 3: a small
 * queue_max; bit 4: no maxpause; bit 5: a small body_max). The rest is records separated by "~~":
 * the first is the session-creation body; each other starts with an op byte (mod 6): a request
 * whose body is the rest of the record, an item of c2s output (the next byte picks which: the
 * stream header, features, a stanza, a stream error, the closing tag), the clock moving on (the
 * next byte in seconds) with a tick, the connection of an earlier request going away, or answers
 * popped. Answers are popped after each record, as the connection layer does.
 *
 * Checks: what a request appends to the stream is, between an optional stream header (a restart)
 * and an optional closing tag (a terminate), whole elements only, well-formed in a stream whose
 * default namespace is jabber:client: a body cannot break the c2s stream's framing. Every request id gets at most one answer, never after its connection went away, and
 * only ids that were given; statuses are 200, 400, 403 or 404; every 200 answer is one well-formed
 * <body/> in the httpbind namespace; a tick returns a time in the future; after the session
 * finished no answer comes but to new requests.
 */
#include <expat.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xml.h"
#include "shard/bosh.h"
#include "shard/xmpp_framing.h"

#define MAX_IDS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct run {
    bosh *b;
    uint64_t now, next_id;
    uint8_t answered[MAX_IDS], gone[MAX_IDS];
    buf body;
} run;

static void die(const char *what, const char *detail, size_t len)
{
    fprintf(stderr, "fuzz_bosh: %s\n%.*s\n", what, (int)len, detail);
    abort();
}

typedef struct wf {
    unsigned depth, roots;
    bool root_ok;
} wf;

static void XMLCALL wf_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    wf *w = ud;
    if (w->depth++ == 0) {
        w->roots++;
        w->root_ok = strcmp(name, BOSH_NS "\x1f" "body") == 0;
    }
}

static void XMLCALL wf_end(void *ud, const XML_Char *name)
{
    wf *w = ud;
    w->depth--;
}

static bool well_formed(const char *data, size_t len, wf *w)
{
    /* The separator bosh.c's own parser uses (core/xml.h): a namespace may hold a space. */
    XML_Parser p = XML_ParserCreateNS("UTF-8", XML_NS_SEP);
    XML_SetUserData(p, w);
    XML_SetElementHandler(p, wf_start, wf_end);
    bool ok = XML_Parse(p, data, (int)len, XML_TRUE) == XML_STATUS_OK;
    XML_ParserFree(p);
    return ok;
}

static void check_body(const buf *body)
{
    wf w = {0};
    if (!well_formed(buf_data(body), buf_len(body), &w) || w.roots != 1 || !w.root_ok)
        die("an answer that is not one <body/>", buf_data(body), buf_len(body));
}

/* The bytes a request appended to the stream: [header] elements [closing tag]. */
static void check_stream(const char *data, size_t len)
{
    static const char close[] = "</stream:stream>";
    if (len >= 5 && memcmp(data, "<?xml", 5) == 0) {
        const char *hdr = memmem(data, len, "<stream:stream", 14);
        const char *gt = hdr ? memchr(hdr, '>', len - (size_t)(hdr - data)) : NULL;
        if (!gt)
            die("a broken stream header", data, len);
        len -= (size_t)(gt + 1 - data);
        data = gt + 1;
    }
    if (len >= sizeof close - 1 && memcmp(data + len - (sizeof close - 1), close, sizeof close - 1) == 0)
        len -= sizeof close - 1;
    buf doc = BUF_INIT;
    buf_appendf(&doc, "<stream:stream xmlns='jabber:client' xmlns:stream="
                "'http://etherx.jabber.org/streams'>");
    buf_append(&doc, data, len);
    buf_appendf(&doc, "</stream:stream>");
    wf w = {0};
    if (!well_formed(buf_data(&doc), buf_len(&doc), &w) || w.roots != 1)
        die("stream bytes that are not whole elements", data, len);
    buf_free(&doc);
}

static void take_answers(run *r)
{
    uint64_t id;
    int status;
    while (bosh_next_answer(r->b, &id, &status, &r->body)) {
        if (id >= r->next_id || id >= MAX_IDS)
            die("an answer to a request never made", buf_data(&r->body), buf_len(&r->body));
        if (r->answered[id]++)
            die("a request answered twice", buf_data(&r->body), buf_len(&r->body));
        if (r->gone[id])
            die("an answer to a connection gone", buf_data(&r->body), buf_len(&r->body));
        if (status != 200 && status != 400 && status != 403 && status != 404)
            die("an odd status", buf_data(&r->body), buf_len(&r->body));
        if (status == 200)
            check_body(&r->body);
    }
}

static const char *const outputs[] = {
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' id='s1' version='1.0'/>",
    "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns="
    "'urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    "<message xmlns='jabber:client' from='a@example.com/r' to='b@example.com'><body>x &amp; y"
    "</body></message>",
    "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns="
    "'urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
};

static void record(run *r, const uint8_t *rec, size_t len, buf *stream)
{
    if (!len)
        return;
    uint8_t op = rec[0] % 6;
    const uint8_t *arg = rec + 1;
    size_t alen = len - 1;
    bool finished = bosh_finished(r->b);
    switch (op) {
    case 0:
    case 1: {
        if (r->next_id >= MAX_IDS)
            break;
        uint64_t id = r->next_id++;
        size_t before = buf_len(stream);
        bosh_request(r->b, id, (const char *)arg, alen, r->now, stream);
        check_stream(buf_data(stream) + before, buf_len(stream) - before);
        break;
    }
    case 2: {
        unsigned k = alen ? arg[0] % 5 : 2;
        int kind = k == 0 ? FRAMING_OUT_OPEN : k == 4 ? FRAMING_OUT_CLOSE : FRAMING_OUT_ELEMENT;
        bosh_output(r->b, kind, outputs[k], strlen(outputs[k]), r->now);
        break;
    }
    case 3: {
        r->now += (alen ? arg[0] : 1) * 1000ull + (alen > 1 ? arg[1] : 0);
        uint64_t next = bosh_tick(r->b, r->now);
        if (next <= r->now)
            die("a tick asking to be called again at once", "", 0);
        break;
    }
    case 4:
        if (alen && arg[0] < r->next_id) {
            r->gone[arg[0]] = 1;
            bosh_request_gone(r->b, arg[0]);
        }
        break;
    default:
        break;
    }
    take_answers(r);
    if (finished && !bosh_finished(r->b))
        die("a finished session came back", "", 0);
}

static const uint8_t *next_record(const uint8_t *p, const uint8_t *end, size_t *len)
{
    const uint8_t *q = p;
    while (q + 1 < end && !(q[0] == '~' && q[1] == '~'))
        q++;
    if (q + 1 >= end)
        q = end;
    *len = (size_t)(q - p);
    return q == end ? end : q + 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bosh_limits lim;
    bosh_limits_default(&lim, 4096);
    uint8_t cfg = data[0];
    lim.hold_max = cfg & 1;
    lim.requests = 1 + ((cfg >> 1) & 3);
    if (cfg & 8)
        lim.queue_max = 300;
    if (cfg & 16)
        lim.maxpause = 0;
    if (cfg & 32)
        lim.body_max = 200;
    const uint8_t *p = data + 1, *end = data + size;
    size_t len;
    const uint8_t *rest = next_record(p, end, &len);
    run *r = calloc(1, sizeof *r);
    r->now = 1000000;
    r->next_id = 1;
    buf stream = BUF_INIT, answer = BUF_INIT;
    int status = 0;
    char sid[BOSH_SID_MAX + 1];
    bosh_body_sid((const char *)p, len, sid);
    r->b = bosh_new(&lim, "0123456789abcdef0123456789abcdef", r->next_id++, (const char *)p, len,
                    r->now, &stream, &status, &answer);
    if (!r->b) {
        if (status != 200 && status != 400)
            die("an odd status at creation", buf_data(&answer), buf_len(&answer));
        if (status == 200)
            check_body(&answer);
    } else {
        while (rest < end) {
            const uint8_t *rec = rest;
            rest = next_record(rec, end, &len);
            record(r, rec, len, &stream);
            if (buf_len(&stream) > (size_t)1 << 24)
                buf_truncate(&stream, 0);
        }
        bosh_free(r->b);
    }
    buf_free(&stream);
    buf_free(&answer);
    buf_free(&r->body);
    free(r);
    return 0;
}
