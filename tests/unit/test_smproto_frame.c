/* tests/unit/test_smproto_frame.c — smproto/frame.c (version 3): the header's exact bytes, a round
 * trip of every type with edge values (empty strings, 1023-byte JIDs, maximal salts, payloads and
 * STATE records, u64 extremes), the session id helpers, which types are counted for ACK, a
 * stream of frames split at every byte boundary, one rejection test per malformation rule (and
 * every truncation of every control record), RESYNC entries (record, presence) byte for byte and by
 * the thousand over several maximal frames, and the encoders aborting on frames the peer would
 * refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smproto/frame.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* The only frame in b (asserting it is exactly one whole frame). */
static smproto_frame one_frame(const buf *b)
{
    smproto_frame f;
    size_t used = 0;
    assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(b), buf_len(b), &f, &used),
                     SMPROTO_FRAME_OK);
    assert_int_equal(used, buf_len(b));
    return f;
}

/* A frame with a hand-made payload, as a hostile peer would send it. */
static void raw_frame(buf *b, smproto_type type, uint64_t sid, const void *payload, size_t len)
{
    buf_free(b);
    smproto_put(b, type, sid, payload, len);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void fill_creds(scram_credentials *c, size_t salt_len, uint32_t iterations, uint8_t seed)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < salt_len; i++)
        c->salt[i] = (uint8_t)(seed + i);
    c->salt_len = salt_len;
    c->iterations = iterations;
    for (size_t i = 0; i < SCRAM_MAX_KEY; i++) {
        c->stored_key[i] = (uint8_t)(0xa0 ^ (seed + i));
        c->server_key[i] = (uint8_t)(0x50 ^ (seed + 3 * i));
    }
}

static void assert_creds_equal(const scram_credentials *a, const scram_credentials *b,
                               size_t key_len)
{
    assert_int_equal(a->salt_len, b->salt_len);
    assert_memory_equal(a->salt, b->salt, a->salt_len);
    assert_int_equal(a->iterations, b->iterations);
    assert_memory_equal(a->stored_key, b->stored_key, key_len);
    assert_memory_equal(a->server_key, b->server_key, key_len);
}

/* A STATE record as the SM's modules write it (opaque to the codec): "roster" keeps one byte. */
#define STATE_SAMPLE "\6roster\1\1"

/* state: the entry's STATE record, a string here (NUL-free) for brevity. */
static void add_entry(buf *b, uint64_t sid, const char *full_jid, const char *state,
                      const char *presence)
{
    smproto_resync_entry e = { .sid = sid, .full_jid = full_jid, .state = (const uint8_t *)state,
                               .state_len = strlen(state), .presence = presence };
    smproto_resync_add(b, &e);
}

/* Bytes as the wire has them, written independently of the codec: big-endian integers and a frame
 * header. */
static uint8_t *wire_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    return p + 8;
}

static uint8_t *wire_header(uint8_t *p, uint32_t len, uint8_t type, uint64_t sid)
{
    static const uint8_t zero[3];
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(len >> (24 - 8 * i));
    p[4] = type;
    memcpy(p + 5, zero, 3);    /* flags, reserved */
    return wire_u64(p + 8, sid);
}

/* Runs fn in a child and asserts it aborts (encoder misuse is a bug, not a frame). */
static void assert_aborts(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        fn();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---- header and raw frames --------------------------------------------------------------- */

static void test_header_bytes(void **state)
{
    buf b = BUF_INIT;
    smproto_put(&b, SMPROTO_STANZA, 0x0102030405060708ull, "<a/>", 4);
    static const uint8_t want[] = { 0, 0, 0, 4, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, '<', 'a', '/',
                                    '>' };
    assert_int_equal(buf_len(&b), sizeof(want));
    assert_memory_equal(buf_data(&b), want, sizeof(want));
    smproto_frame f = one_frame(&b);
    assert_int_equal(f.type, SMPROTO_STANZA);
    assert_true(f.sid == 0x0102030405060708ull);
    assert_int_equal(f.len, 4);
    assert_ptr_equal(f.payload, (const uint8_t *)buf_data(&b) + SMPROTO_HEADER);
    buf_free(&b);
}

static void test_stanza_sizes(void **state)
{
    buf b = BUF_INIT;
    smproto_put(&b, SMPROTO_STANZA, 7, NULL, 0);
    smproto_frame f = one_frame(&b);
    assert_int_equal(f.len, 0);
    assert_int_equal(buf_len(&b), SMPROTO_HEADER);

    uint8_t *big = malloc(SMPROTO_MAX_PAYLOAD);
    assert_non_null(big);
    for (size_t i = 0; i < SMPROTO_MAX_PAYLOAD; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    buf_free(&b);
    smproto_put(&b, SMPROTO_STANZA, UINT64_MAX, big, SMPROTO_MAX_PAYLOAD);
    f = one_frame(&b);
    assert_int_equal(f.type, SMPROTO_STANZA);
    assert_true(f.sid == UINT64_MAX);
    assert_int_equal(f.len, SMPROTO_MAX_PAYLOAD);
    assert_memory_equal(f.payload, big, SMPROTO_MAX_PAYLOAD);

    /* One byte short of the payload is still partial, at every prefix length near the end. */
    size_t used = 0;
    for (size_t cut = 1; cut <= 3; cut++)
        assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&b), buf_len(&b) - cut, &f,
                                            &used),
                         SMPROTO_FRAME_PARTIAL);
    free(big);

    /* One byte more is refused, not framed and not a crash (security issue 12, finding 2: a
     * stanza a client made grow past the limit aborted the SM); nothing is appended. */
    size_t before = buf_len(&b);
    big = calloc(1, SMPROTO_MAX_PAYLOAD + 2);
    assert_false(smproto_put(&b, SMPROTO_STANZA, 1, big, SMPROTO_MAX_PAYLOAD + 1));
    memset(big, 'x', SMPROTO_MAX_PAYLOAD + 1);
    big[SMPROTO_MAX_PAYLOAD - 2] = 0;   /* "h\0", the iq and its NUL: one byte over */
    assert_false(smproto_put_register(&b, 1, "h", (char *)big));
    assert_int_equal(buf_len(&b), before);
    big[SMPROTO_MAX_PAYLOAD - 2] = 'x';
    big[SMPROTO_MAX_PAYLOAD - 3] = 0;   /* exactly the most a frame carries */
    assert_true(smproto_put_register(&b, 1, "h", (char *)big));
    assert_int_equal(buf_len(&b), before + SMPROTO_HEADER + SMPROTO_MAX_PAYLOAD);
    free(big);
    buf_free(&b);
}

static void test_sid_helpers(void **state)
{
    assert_true(smproto_sid(0, 0, 0) == 0);
    assert_true(smproto_sid(255, 0xffffff, 0xffffffffu) == UINT64_MAX);
    uint64_t sid = smproto_sid(0xab, 0x123456, 0x89abcdefu);
    assert_true(sid == 0xab12345689abcdefull);
    assert_int_equal(smproto_sid_shard(sid), 0xab);
    assert_int_equal(smproto_sid_slot(sid), 0x123456);
    assert_int_equal(smproto_sid_generation(sid), 0x89abcdefu);
    assert_int_equal(smproto_sid_shard(UINT64_MAX), 255);
    assert_int_equal(smproto_sid_slot(UINT64_MAX), 0xffffff);
    assert_int_equal(smproto_sid_generation(UINT64_MAX), 0xffffffffu);
    /* Out-of-range parts are masked, never spilled into a neighbour. */
    assert_true(smproto_sid(0x100, 0, 0) == 0);
    assert_true(smproto_sid(0, 0x1000000, 0) == 0);
    assert_true(smproto_sid(1, 0x1ffffff, 0) == smproto_sid(1, 0xffffff, 0));

    /* Extreme ids survive the header. */
    static const uint64_t sids[] = { 0, 1, 0xffffffffull, 0x100000000ull, INT64_MAX,
                                     (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX };
    for (size_t i = 0; i < sizeof(sids) / sizeof(sids[0]); i++) {
        buf b = BUF_INIT;
        smproto_put_end(&b, sids[i], SMPROTO_END_GONE, "");
        smproto_frame f = one_frame(&b);
        assert_true(f.sid == sids[i]);
        buf_free(&b);
    }
}

static void test_type_names(void **state)
{
    static const char *const names[] = { NULL, "STANZA", "AUTH_QUERY", "AUTH_ANSWER", "BIND",
                                         "BOUND", "END", "REGISTER", "PING", "PONG", "RESYNC",
                                         "UNDELIVERED", "ACK", "STATE", "MODULE" };
    assert_int_equal(sizeof(names) / sizeof(names[0]), SMPROTO_TYPE_MAX + 1);
    for (int t = SMPROTO_STANZA; t <= SMPROTO_TYPE_MAX; t++)
        assert_string_equal(smproto_type_name((smproto_type)t), names[t]);
    assert_string_equal(smproto_type_name((smproto_type)0), "UNKNOWN");
    assert_string_equal(smproto_type_name((smproto_type)(SMPROTO_TYPE_MAX + 1)), "UNKNOWN");
    assert_string_equal(smproto_type_name((smproto_type)255), "UNKNOWN");
}

/* Only session traffic is numbered for ACK; the link's own frames (PING, PONG, RESYNC and ACK
 * itself) are not, or acknowledging would never settle. */
static void test_counted(void **state)
{
    static const bool counted[] = {
        [SMPROTO_STANZA] = true,   [SMPROTO_AUTH_QUERY] = true, [SMPROTO_AUTH_ANSWER] = true,
        [SMPROTO_BIND] = true,     [SMPROTO_BOUND] = true,      [SMPROTO_END] = true,
        [SMPROTO_REGISTER] = true, [SMPROTO_PING] = false,      [SMPROTO_PONG] = false,
        [SMPROTO_RESYNC] = false,  [SMPROTO_UNDELIVERED] = true, [SMPROTO_ACK] = false,
        [SMPROTO_STATE] = true,    [SMPROTO_MODULE] = true,
    };
    assert_int_equal(sizeof(counted) / sizeof(counted[0]), SMPROTO_TYPE_MAX + 1);
    for (int t = SMPROTO_STANZA; t <= SMPROTO_TYPE_MAX; t++)
        assert_int_equal(smproto_counted((smproto_type)t), counted[t]);
}

/* ---- round trips of the control records -------------------------------------------------- */

static void test_auth_query(void **state)
{
    char *jid_part = repeat('u', 1023);
    const char *cases[][2] = { { "example.com", "juliet" }, { "", "" }, { "h\xc3\xa9.example",
        "\xf0\x9f\x98\x80" }, { jid_part, jid_part } };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf b = BUF_INIT, again = BUF_INIT;
        smproto_put_auth_query(&b, 42 + i, cases[i][0], cases[i][1]);
        smproto_frame f = one_frame(&b);
        assert_int_equal(f.type, SMPROTO_AUTH_QUERY);
        assert_true(f.sid == 42 + i);
        const char *host, *user;
        assert_true(smproto_get_auth_query(&f, &host, &user));
        assert_string_equal(host, cases[i][0]);
        assert_string_equal(user, cases[i][1]);
        assert_true((const uint8_t *)host >= f.payload && (const uint8_t *)user < f.payload + f.len);
        smproto_put_auth_query(&again, f.sid, host, user);
        assert_int_equal(buf_len(&again), buf_len(&b));
        assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
        buf_free(&b);
        buf_free(&again);
    }
    free(jid_part);
}

static void test_auth_answer_ok(void **state)
{
    static const struct {
        size_t salt1, salt256;
        uint32_t it1, it256;
    } cases[] = {
        { SCRAM_SALT_LEN, SCRAM_SALT_LEN, SCRAM_ITERATIONS, SCRAM_ITERATIONS },
        { SCRAM_SALT_MAX, SCRAM_SALT_MAX, UINT32_MAX, 1 },
        { 0, 0, 1, UINT32_MAX },
        { 1, SCRAM_SALT_MAX - 1, 0x01020304u, 0x80000000u },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        smproto_creds in, out;
        fill_creds(&in.sha1, cases[i].salt1, cases[i].it1, (uint8_t)(i * 17));
        fill_creds(&in.sha256, cases[i].salt256, cases[i].it256, (uint8_t)(i * 17 + 100));
        buf b = BUF_INIT, again = BUF_INIT;
        smproto_put_auth_answer(&b, smproto_sid(3, 4, 5), SMPROTO_AUTH_OK, &in);
        assert_int_equal(buf_len(&b), SMPROTO_HEADER + 1 + (1 + cases[i].salt1 + 4 + 2 * 21) +
                                      (1 + cases[i].salt256 + 4 + 2 * 33));
        smproto_frame f = one_frame(&b);
        uint8_t status = 99;
        memset(&out, 0xee, sizeof(out));
        assert_true(smproto_get_auth_answer(&f, &status, &out));
        assert_int_equal(status, SMPROTO_AUTH_OK);
        assert_creds_equal(&out.sha1, &in.sha1, 20);
        assert_creds_equal(&out.sha256, &in.sha256, 32);
        smproto_put_auth_answer(&again, f.sid, status, &out);
        assert_int_equal(buf_len(&again), buf_len(&b));
        assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
        buf_free(&b);
        buf_free(&again);
    }
}

static void test_auth_answer_failures(void **state)
{
    for (uint8_t st = SMPROTO_AUTH_NO_USER; st <= SMPROTO_AUTH_ERROR; st++) {
        buf b = BUF_INIT;
        smproto_put_auth_answer(&b, 9, st, NULL);
        assert_int_equal(buf_len(&b), SMPROTO_HEADER + 1);
        smproto_frame f = one_frame(&b);
        uint8_t status = 99;
        smproto_creds c;
        assert_true(smproto_get_auth_answer(&f, &status, &c));
        assert_int_equal(status, st);
        buf_free(&b);
    }
    /* Credentials handed along with a failure are not sent. */
    smproto_creds in;
    fill_creds(&in.sha1, 16, 4096, 1);
    fill_creds(&in.sha256, 16, 4096, 2);
    buf b = BUF_INIT;
    smproto_put_auth_answer(&b, 9, SMPROTO_AUTH_NO_USER, &in);
    assert_int_equal(buf_len(&b), SMPROTO_HEADER + 1);
    buf_free(&b);
}

static void test_bind(void **state)
{
    char *part = repeat('r', 1023);
    static const char *const names[][3] = {
        { "example.com", "romeo", "balcony" },
        { "example.com", "romeo", "" },
        { "", "", "" },
    };
    for (size_t i = 0; i < 4; i++) {
        const char *host = i < 3 ? names[i][0] : part, *user = i < 3 ? names[i][1] : part,
                   *res = i < 3 ? names[i][2] : part;
        for (uint8_t flags = 0; flags <= SMPROTO_BIND_LEGACY_SESSION; flags++) {
            buf b = BUF_INIT, again = BUF_INIT;
            smproto_put_bind(&b, UINT64_MAX - i, host, user, res, flags);
            smproto_frame f = one_frame(&b);
            assert_int_equal(f.type, SMPROTO_BIND);
            const char *h, *u, *r;
            uint8_t fl = 99;
            assert_true(smproto_get_bind(&f, &h, &u, &r, &fl));
            assert_string_equal(h, host);
            assert_string_equal(u, user);
            assert_string_equal(r, res);
            assert_int_equal(fl, flags);
            smproto_put_bind(&again, f.sid, h, u, r, fl);
            assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
            buf_free(&b);
            buf_free(&again);
        }
    }
    free(part);
}

static void test_bound(void **state)
{
    /* The longest JID core/jid allows: three 1023-byte parts. */
    char *full = repeat('n', 3 * 1023 + 2);
    full[1023] = '@';
    full[2 * 1023 + 1] = '/';
    const char *jids[] = { "juliet@example.com/balcony", "", full };
    for (size_t i = 0; i < sizeof(jids) / sizeof(jids[0]); i++) {
        buf b = BUF_INIT, again = BUF_INIT;
        smproto_put_bound(&b, 1, SMPROTO_BOUND_OK, jids[i]);
        smproto_frame f = one_frame(&b);
        uint8_t st = 99;
        const char *j = NULL;
        assert_true(smproto_get_bound(&f, &st, &j));
        assert_int_equal(st, SMPROTO_BOUND_OK);
        assert_string_equal(j, jids[i]);
        smproto_put_bound(&again, f.sid, st, j);
        assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
        buf_free(&b);
        buf_free(&again);
    }
    for (uint8_t s = SMPROTO_BOUND_CONFLICT; s <= SMPROTO_BOUND_CONSTRAINT; s++) {
        buf b = BUF_INIT;
        smproto_put_bound(&b, 1, s, NULL);
        assert_int_equal(buf_len(&b), SMPROTO_HEADER + 1);
        smproto_frame f = one_frame(&b);
        uint8_t st = 99;
        const char *j = "sentinel";
        assert_true(smproto_get_bound(&f, &st, &j));
        assert_int_equal(st, s);
        assert_null(j);
        buf_free(&b);
    }
    free(full);
}

static void test_end(void **state)
{
    for (uint8_t reason = SMPROTO_END_GONE; reason <= SMPROTO_END_ERROR; reason++) {
        const char *texts[] = { "", "Replaced by new connection", "\xe2\x82\xac" };
        for (size_t i = 0; i < 3; i++) {
            buf b = BUF_INIT, again = BUF_INIT;
            smproto_put_end(&b, reason, reason, texts[i]);
            smproto_frame f = one_frame(&b);
            uint8_t r = 99;
            const char *t;
            assert_true(smproto_get_end(&f, &r, &t));
            assert_int_equal(r, reason);
            assert_string_equal(t, texts[i]);
            smproto_put_end(&again, f.sid, r, t);
            assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
            buf_free(&b);
            buf_free(&again);
        }
    }
}

static void test_register(void **state)
{
    static const char *const iqs[] = {
        "<iq type='get' id='reg1'><query xmlns='jabber:iq:register'/></iq>", "" };
    for (size_t i = 0; i < 2; i++) {
        buf b = BUF_INIT, again = BUF_INIT;
        smproto_put_register(&b, 77, "example.com", iqs[i]);
        smproto_frame f = one_frame(&b);
        const char *h, *x;
        assert_true(smproto_get_register(&f, &h, &x));
        assert_string_equal(h, "example.com");
        assert_string_equal(x, iqs[i]);
        smproto_put_register(&again, f.sid, h, x);
        assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
        buf_free(&b);
        buf_free(&again);
    }
    /* The largest REGISTER that fits one frame. */
    char *xml = repeat('x', SMPROTO_MAX_PAYLOAD - 2);
    buf b = BUF_INIT;
    smproto_put_register(&b, 1, "", xml);
    smproto_frame f = one_frame(&b);
    assert_int_equal(f.len, SMPROTO_MAX_PAYLOAD);
    const char *h, *x;
    assert_true(smproto_get_register(&f, &h, &x));
    assert_string_equal(h, "");
    assert_int_equal(strlen(x), SMPROTO_MAX_PAYLOAD - 2);
    buf_free(&b);
    free(xml);
}

static void test_ping_pong(void **state)
{
    static const uint64_t tokens[] = { 0, 1, 0x0123456789abcdefull, UINT64_MAX };
    for (int type = SMPROTO_PING; type <= SMPROTO_PONG; type++)
        for (size_t i = 0; i < 4; i++) {
            buf b = BUF_INIT;
            smproto_put_ping(&b, (smproto_type)type, tokens[i]);
            assert_int_equal(buf_len(&b), SMPROTO_HEADER + 8);
            smproto_frame f = one_frame(&b);
            assert_int_equal(f.type, type);
            assert_true(f.sid == 0);
            uint64_t t = 1;
            assert_true(smproto_get_ping(&f, &t));
            assert_true(t == tokens[i]);
            buf_free(&b);
        }
}

static void test_ack(void **state)
{
    static const uint64_t seqs[] = { 0, 1, 0xffffffffull, 0x100000000ull, 0x0123456789abcdefull,
                                     UINT64_MAX };
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        buf b = BUF_INIT, again = BUF_INIT;
        smproto_put_ack(&b, seqs[i]);
        uint8_t want[SMPROTO_HEADER + 8];
        wire_u64(wire_header(want, 8, SMPROTO_ACK, 0), seqs[i]);
        assert_int_equal(buf_len(&b), sizeof(want));
        assert_memory_equal(buf_data(&b), want, sizeof(want));
        smproto_frame f = one_frame(&b);
        assert_int_equal(f.type, SMPROTO_ACK);
        assert_true(f.sid == 0);
        uint64_t seq = ~seqs[i];
        assert_true(smproto_get_ack(&f, &seq));
        assert_true(seq == seqs[i]);
        smproto_put_ack(&again, seq);
        assert_int_equal(buf_len(&again), buf_len(&b));
        assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
        buf_free(&b);
        buf_free(&again);
    }
}

static void test_state(void **state)
{
    /* The payload is the record, byte for byte: empty (nothing to keep), short, the maximum. */
    static const uint64_t sids[] = { 1, 0x0102030405060708ull, UINT64_MAX };
    uint8_t *big = malloc(SMPROTO_STATE_MAX);
    for (size_t k = 0; k < SMPROTO_STATE_MAX; k++)
        big[k] = (uint8_t)(k * 7);
    const struct { const uint8_t *p; size_t len; } records[] = {
        { NULL, 0 }, { (const uint8_t *)STATE_SAMPLE, 9 }, { (const uint8_t *)"\0", 1 },
        { big, SMPROTO_STATE_MAX },
    };
    for (size_t i = 0; i < sizeof(sids) / sizeof(sids[0]); i++)
        for (size_t r = 0; r < sizeof(records) / sizeof(records[0]); r++) {
            buf b = BUF_INIT, again = BUF_INIT;
            smproto_put_state(&b, sids[i], records[r].p, records[r].len);
            uint8_t *want = malloc(SMPROTO_HEADER + records[r].len + 1);
            uint8_t *p = wire_header(want, (uint32_t)records[r].len, SMPROTO_STATE, sids[i]);
            if (records[r].len)
                memcpy(p, records[r].p, records[r].len);
            assert_int_equal(buf_len(&b), SMPROTO_HEADER + records[r].len);
            assert_memory_equal(buf_data(&b), want, buf_len(&b));
            free(want);
            smproto_frame f = one_frame(&b);
            assert_int_equal(f.type, SMPROTO_STATE);
            assert_true(f.sid == sids[i]);
            const uint8_t *got = NULL;
            size_t len = 99999;
            assert_true(smproto_get_state(&f, &got, &len));
            assert_int_equal(len, records[r].len);
            if (len)
                assert_memory_equal(got, records[r].p, len);
            smproto_put_state(&again, f.sid, got, len);
            assert_int_equal(buf_len(&again), buf_len(&b));
            assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
            buf_free(&b);
            buf_free(&again);
        }
    free(big);
}

/* ---- streams ----------------------------------------------------------------------------- */

/* One frame of every type (and an empty stanza and an empty RESYNC), back to back. */
static void build_stream(buf *b)
{
    smproto_creds c;
    fill_creds(&c.sha1, 16, 4096, 3);
    fill_creds(&c.sha256, 64, 10000, 4);
    smproto_put(b, SMPROTO_STANZA, 1, "<message to='a@b'/>", 19);
    smproto_put(b, SMPROTO_STANZA, 2, NULL, 0);
    smproto_put_auth_query(b, 3, "example.com", "juliet");
    smproto_put_auth_answer(b, 3, SMPROTO_AUTH_OK, &c);
    smproto_put_auth_answer(b, 4, SMPROTO_AUTH_NO_USER, NULL);
    smproto_put_bind(b, 3, "example.com", "juliet", "", SMPROTO_BIND_LEGACY_SESSION);
    smproto_put_bound(b, 3, SMPROTO_BOUND_OK, "juliet@example.com/x");
    smproto_put_bound(b, 5, SMPROTO_BOUND_CONFLICT, NULL);
    smproto_put_end(b, 3, SMPROTO_END_REPLACED, "bye");
    smproto_put_register(b, 6, "example.com", "<iq/>");
    smproto_put_ping(b, SMPROTO_PING, 11);
    smproto_put_ping(b, SMPROTO_PONG, 11);
    smproto_put_undelivered(b, 7, "<message to='a@b/c'/>", 21);
    smproto_put_ack(b, 12);
    smproto_put_state(b, 3, (const uint8_t *)STATE_SAMPLE, 9);
    size_t rs = smproto_resync_begin(b);
    add_entry(b, smproto_sid(1, 2, 3), "a@b/c", "", "");
    add_entry(b, UINT64_MAX, "d@e/f", STATE_SAMPLE, "<presence from='d@e/f'/>");
    smproto_resync_end(b, rs);
    smproto_resync_end(b, smproto_resync_begin(b));
}

/* Where each frame of the stream starts (and, past the last, its end). */
static size_t stream_offsets(const buf *b, size_t *offsets, size_t max)
{
    size_t n = 0, pos = 0;
    while (pos < buf_len(b)) {
        smproto_frame f;
        size_t used;
        assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(b) + pos, buf_len(b) - pos,
                                            &f, &used),
                         SMPROTO_FRAME_OK);
        assert_true(n < max);
        offsets[n++] = pos;
        pos += used;
    }
    offsets[n] = pos;
    return n;
}

/* Reads whatever whole frames rx holds, as a link reader does, checking each against the next
 * expected one; returns the updated count. */
static size_t drain(buf *rx, const buf *stream, const size_t *offsets, size_t got)
{
    for (;;) {
        smproto_frame f;
        size_t used = 0;
        smproto_frame_status st =
            smproto_frame_next((const uint8_t *)buf_data(rx), buf_len(rx), &f, &used);
        if (st == SMPROTO_FRAME_PARTIAL)
            return got;
        assert_int_equal(st, SMPROTO_FRAME_OK);
        size_t len = offsets[got + 1] - offsets[got];
        assert_int_equal(used, len);
        assert_memory_equal(buf_data(rx), buf_data(stream) + offsets[got], len);
        assert_ptr_equal(f.payload, (const uint8_t *)buf_data(rx) + SMPROTO_HEADER);
        buf_consume(rx, used);
        got++;
    }
}

static void test_split_every_boundary(void **state)
{
    buf stream = BUF_INIT;
    build_stream(&stream);
    size_t offsets[32];
    size_t n = stream_offsets(&stream, offsets, 31);
    assert_int_equal(n, 17);
    size_t total = buf_len(&stream);

    for (size_t cut = 0; cut <= total; cut++) {
        buf rx = BUF_INIT;
        buf_append(&rx, buf_data(&stream), cut);
        size_t got = drain(&rx, &stream, offsets, 0);
        /* Exactly the frames wholly inside the first part came out. */
        size_t whole = 0;
        while (whole < n && offsets[whole + 1] <= cut)
            whole++;
        assert_int_equal(got, whole);
        buf_append(&rx, buf_data(&stream) + cut, total - cut);
        got = drain(&rx, &stream, offsets, got);
        assert_int_equal(got, n);
        assert_int_equal(buf_len(&rx), 0);
        buf_free(&rx);
    }

    /* And one byte at a time. */
    buf rx = BUF_INIT;
    size_t got = 0;
    for (size_t i = 0; i < total; i++) {
        buf_append(&rx, buf_data(&stream) + i, 1);
        got = drain(&rx, &stream, offsets, got);
    }
    assert_int_equal(got, n);
    buf_free(&rx);
    buf_free(&stream);
}

/* ---- header malformations ---------------------------------------------------------------- */

static smproto_frame_status next_of(const uint8_t *data, size_t len)
{
    smproto_frame f;
    size_t used = 0;
    return smproto_frame_next(data, len, &f, &used);
}

static void test_header_short_is_partial(void **state)
{
    buf b = BUF_INIT;
    smproto_put_ping(&b, SMPROTO_PING, 5);
    for (size_t len = 0; len < buf_len(&b); len++)
        assert_int_equal(next_of((const uint8_t *)buf_data(&b), len), SMPROTO_FRAME_PARTIAL);
    assert_int_equal(next_of((const uint8_t *)buf_data(&b), buf_len(&b)), SMPROTO_FRAME_OK);
    buf_free(&b);
}

static void test_header_length_over_max(void **state)
{
    /* Refused from the header alone: nobody waits for (or buffers) an over-long payload. */
    uint8_t h[SMPROTO_HEADER] = { 0, 0x10, 0, 1, SMPROTO_STANZA };
    assert_int_equal(next_of(h, sizeof(h)), SMPROTO_FRAME_BAD);
    memset(h, 0xff, 4);
    assert_int_equal(next_of(h, sizeof(h)), SMPROTO_FRAME_BAD);
    /* Exactly the maximum, payload not yet here: partial. */
    uint8_t m[SMPROTO_HEADER] = { 0, 0x10, 0, 0, SMPROTO_STANZA };
    assert_int_equal(next_of(m, sizeof(m)), SMPROTO_FRAME_PARTIAL);
}

static void test_header_bad_type(void **state)
{
    uint8_t h[SMPROTO_HEADER] = { 0 };
    for (int t = 0; t < 256; t++) {
        h[4] = (uint8_t)t;
        smproto_frame_status want = t >= SMPROTO_STANZA && t <= SMPROTO_TYPE_MAX
                                        ? SMPROTO_FRAME_OK
                                        : SMPROTO_FRAME_BAD;
        assert_int_equal(next_of(h, sizeof(h)), want);
    }
    /* Version 4's last types by number, and the first one past them. */
    h[4] = 13;
    assert_int_equal(next_of(h, sizeof(h)), SMPROTO_FRAME_OK);
    h[4] = 14;
    assert_int_equal(next_of(h, sizeof(h)), SMPROTO_FRAME_OK);
    h[4] = 15;
    assert_int_equal(next_of(h, sizeof(h)), SMPROTO_FRAME_BAD);
}

static void test_header_flags(void **state)
{
    for (int bit = 0; bit < 8; bit++) {
        uint8_t h[SMPROTO_HEADER] = { 0, 0, 0, 0, SMPROTO_STANZA };
        h[5] = (uint8_t)(1 << bit);
        assert_int_equal(next_of(h, sizeof(h)), SMPROTO_FRAME_BAD);
    }
}

static void test_header_reserved(void **state)
{
    for (int at = 6; at <= 7; at++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t h[SMPROTO_HEADER] = { 0, 0, 0, 0, SMPROTO_STANZA };
            h[at] = (uint8_t)(1 << bit);
            assert_int_equal(next_of(h, sizeof(h)), SMPROTO_FRAME_BAD);
        }
}

/* ---- payload malformations --------------------------------------------------------------- */

/* Every decoder on f; returns which accepted it as a bitmask of types. */
static unsigned accepted_by(const smproto_frame *f)
{
    const char *s1, *s2, *s3;
    uint8_t u8;
    uint64_t u64;
    smproto_creds c;
    unsigned mask = 0;
    if (smproto_get_auth_query(f, &s1, &s2))
        mask |= 1u << SMPROTO_AUTH_QUERY;
    if (smproto_get_auth_answer(f, &u8, &c))
        mask |= 1u << SMPROTO_AUTH_ANSWER;
    if (smproto_get_bind(f, &s1, &s2, &s3, &u8))
        mask |= 1u << SMPROTO_BIND;
    if (smproto_get_bound(f, &u8, &s1))
        mask |= 1u << SMPROTO_BOUND;
    if (smproto_get_end(f, &u8, &s1))
        mask |= 1u << SMPROTO_END;
    if (smproto_get_register(f, &s1, &s2))
        mask |= 1u << SMPROTO_REGISTER;
    if (smproto_get_ping(f, &u64))
        mask |= 1u << f->type;
    size_t len;
    if (smproto_get_undelivered(f, &s1, &len))
        mask |= 1u << SMPROTO_UNDELIVERED;
    if (smproto_get_ack(f, &u64))
        mask |= 1u << SMPROTO_ACK;
    const uint8_t *record;
    if (smproto_get_state(f, &record, &len))
        mask |= 1u << SMPROTO_STATE;
    size_t name_len;
    if (smproto_get_module(f, &s1, &name_len, &record, &len))
        mask |= 1u << SMPROTO_MODULE;
    smproto_resync_reader rd;
    smproto_resync_read(f, &rd);
    smproto_resync_entry e;
    int r;
    while ((r = smproto_resync_next(&rd, &e)) == 1)
        ;
    if (r == 0)
        mask |= 1u << SMPROTO_RESYNC;
    return mask;
}

static bool payload_ok(smproto_type type, uint64_t sid, const void *payload, size_t len)
{
    buf b = BUF_INIT;
    raw_frame(&b, type, sid, payload, len);
    smproto_frame f = one_frame(&b);
    unsigned mask = accepted_by(&f);
    buf_free(&b);
    assert_true(mask == 0 || mask == 1u << type);
    return mask != 0;
}

/* One valid frame of each control type. */
static void control_samples(buf *out, size_t *offsets, size_t *n)
{
    smproto_creds c;
    fill_creds(&c.sha1, 3, 4096, 9);
    fill_creds(&c.sha256, 5, 4096, 10);
    size_t k = 0;
#define SAMPLE(stmt) (offsets[k++] = buf_len(out), (stmt))
    SAMPLE(smproto_put_auth_query(out, 1, "h", "u"));
    SAMPLE(smproto_put_auth_answer(out, 1, SMPROTO_AUTH_OK, &c));
    SAMPLE(smproto_put_auth_answer(out, 1, SMPROTO_AUTH_ERROR, NULL));
    SAMPLE(smproto_put_bind(out, 1, "h", "u", "r", 1));
    SAMPLE(smproto_put_bind(out, 1, "", "", "", 0));
    SAMPLE(smproto_put_bound(out, 1, SMPROTO_BOUND_OK, "u@h/r"));
    SAMPLE(smproto_put_bound(out, 1, SMPROTO_BOUND_NOT_ALLOWED, NULL));
    SAMPLE(smproto_put_end(out, 1, SMPROTO_END_KICKED, "x"));
    SAMPLE(smproto_put_end(out, 1, SMPROTO_END_GONE, ""));
    SAMPLE(smproto_put_register(out, 1, "h", "<iq/>"));
    SAMPLE(smproto_put_ping(out, SMPROTO_PING, 1));
    SAMPLE(smproto_put_ping(out, SMPROTO_PONG, 2));
    SAMPLE(smproto_put_ack(out, 0));
    SAMPLE(smproto_put_ack(out, UINT64_MAX));
#undef SAMPLE
    offsets[k] = buf_len(out);
    *n = k;
}

static void test_every_truncation_rejected(void **state)
{
    buf b = BUF_INIT;
    size_t offsets[24], n;
    control_samples(&b, offsets, &n);
    for (size_t i = 0; i < n; i++) {
        smproto_frame f;
        size_t used;
        assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&b) + offsets[i],
                                            offsets[i + 1] - offsets[i], &f, &used),
                         SMPROTO_FRAME_OK);
        assert_true(payload_ok(f.type, f.sid, f.payload, f.len));
        for (uint32_t len = 0; len < f.len; len++)
            assert_false(payload_ok(f.type, f.sid, f.payload, len));
    }
    buf_free(&b);
}

static void test_trailing_byte_rejected(void **state)
{
    buf b = BUF_INIT;
    size_t offsets[24], n;
    control_samples(&b, offsets, &n);
    for (size_t i = 0; i < n; i++) {
        smproto_frame f;
        size_t used;
        assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&b) + offsets[i],
                                            offsets[i + 1] - offsets[i], &f, &used),
                         SMPROTO_FRAME_OK);
        uint8_t longer[512];
        assert_true(f.len + 1 <= sizeof(longer));
        memcpy(longer, f.payload, f.len);
        /* Whatever the extra byte, even a NUL after a final string. */
        for (int extra = 0; extra < 256; extra += 51) {
            longer[f.len] = (uint8_t)extra;
            assert_false(payload_ok(f.type, f.sid, longer, f.len + 1));
        }
    }
    buf_free(&b);
}

static void test_missing_nul(void **state)
{
    assert_true(payload_ok(SMPROTO_AUTH_QUERY, 1, "host\0user", 10));
    assert_false(payload_ok(SMPROTO_AUTH_QUERY, 1, "host\0user", 9));
    assert_false(payload_ok(SMPROTO_AUTH_QUERY, 1, "hostuser", 8));
    assert_false(payload_ok(SMPROTO_REGISTER, 1, "h\0<iq/>", 7));
    assert_false(payload_ok(SMPROTO_END, 1, "\0bye", 4));
    assert_false(payload_ok(SMPROTO_BOUND, 1, "\0a@b/c", 6));
}

static void test_interior_nul(void **state)
{
    /* The first NUL ends a string, so a NUL inside one leaves bytes over: refused. */
    assert_true(payload_ok(SMPROTO_END, 1, "\0ab", 4));
    assert_false(payload_ok(SMPROTO_END, 1, "\0a\0b", 5));
    assert_false(payload_ok(SMPROTO_REGISTER, 1, "h\0<iq\0/>", 9));
    assert_false(payload_ok(SMPROTO_BOUND, 1, "\0a@b\0/c", 8));
    /* A NUL inside the host shifts every field: the flags byte becomes a string. */
    assert_false(payload_ok(SMPROTO_BIND, 1, "h\0x\0u\0r\0\1", 9));
}

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        { "plain", true },
        { "\xc3\xa9", true },                   /* U+00E9 */
        { "\xe2\x82\xac", true },               /* U+20AC */
        { "\xed\x9f\xbf", true },               /* U+D7FF, last before the surrogates */
        { "\xee\x80\x80", true },               /* U+E000, first after them */
        { "\xf0\x90\x80\x80", true },           /* U+10000 */
        { "\xf4\x8f\xbf\xbf", true },           /* U+10FFFF */
        { "\x7f", true },
        { "\x80", false },                      /* lone continuation */
        { "\xbf", false },
        { "\xc0\x80", false },                  /* overlong NUL */
        { "\xc1\xbf", false },                  /* overlong */
        { "\xe0\x80\xaf", false },              /* overlong '/' */
        { "\xe0\x9f\xbf", false },              /* overlong */
        { "\xf0\x8f\xbf\xbf", false },          /* overlong */
        { "\xed\xa0\x80", false },              /* U+D800 */
        { "\xed\xbf\xbf", false },              /* U+DFFF */
        { "\xf4\x90\x80\x80", false },          /* U+110000 */
        { "\xf5\x80\x80\x80", false },
        { "\xff", false },
        { "\xfe", false },
        { "\xc3", false },                      /* truncated before the NUL */
        { "\xe2\x82", false },
        { "\xf0\x9f\x98", false },
        { "\xc3\x28", false },                  /* bad continuation */
        { "a\xe2\x28\xa1", false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t p[64];
        size_t l = strlen(cases[i].s);
        /* In each string position of AUTH_QUERY, and as a RESYNC entry's JID and presence. */
        memcpy(p, cases[i].s, l + 1);
        memcpy(p + l + 1, "u", 2);
        assert_int_equal(payload_ok(SMPROTO_AUTH_QUERY, 1, p, l + 3), cases[i].ok);
        memcpy(p, "h", 2);
        memcpy(p + 2, cases[i].s, l + 1);
        assert_int_equal(payload_ok(SMPROTO_AUTH_QUERY, 1, p, l + 3), cases[i].ok);
        uint8_t *q = wire_u64(p, 1);
        memcpy(q, cases[i].s, l + 1);
        memcpy(q + l + 1, "\0\1x", 4);     /* a 1-byte STATE record, no presence */
        assert_int_equal(payload_ok(SMPROTO_RESYNC, 0, p, 8 + l + 5), cases[i].ok);
        q = wire_u64(p, 1);
        memcpy(q, "a@b/c", 6);
        q[6] = q[7] = 0;
        memcpy(q + 8, cases[i].s, l + 1);
        assert_int_equal(payload_ok(SMPROTO_RESYNC, 0, p, 8 + 8 + l + 1), cases[i].ok);
    }
}

/* AUTH_ANSWER payloads built field by field. */
typedef struct {
    uint8_t p[512];
    size_t len;
} bytes;

static void put8(bytes *b, uint8_t v) { b->p[b->len++] = v; }
static void put32(bytes *b, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        put8(b, (uint8_t)(v >> s));
}
static void put_field(bytes *b, size_t n, uint8_t fill)
{
    put8(b, (uint8_t)n);
    memset(b->p + b->len, fill, n);
    b->len += n;
}
static void put_mech(bytes *b, size_t salt, uint32_t it, size_t stored, size_t server)
{
    put_field(b, salt, 0x11);
    put32(b, it);
    put_field(b, stored, 0x22);
    put_field(b, server, 0x33);
}
static bool answer_ok(uint8_t status, size_t salt1, uint32_t it1, size_t st1, size_t sv1,
                      size_t salt2, uint32_t it2, size_t st2, size_t sv2)
{
    bytes b = { .len = 0 };
    put8(&b, status);
    put_mech(&b, salt1, it1, st1, sv1);
    put_mech(&b, salt2, it2, st2, sv2);
    return payload_ok(SMPROTO_AUTH_ANSWER, 1, b.p, b.len);
}

static void test_auth_answer_salt_bound(void **state)
{
    assert_true(answer_ok(0, 64, 1, 20, 20, 64, 1, 32, 32));
    assert_false(answer_ok(0, 65, 1, 20, 20, 16, 1, 32, 32));
    assert_false(answer_ok(0, 16, 1, 20, 20, 65, 1, 32, 32));
    assert_false(answer_ok(0, 255, 1, 20, 20, 16, 1, 32, 32));
}

static void test_auth_answer_key_lengths(void **state)
{
    assert_true(answer_ok(0, 16, 4096, 20, 20, 16, 4096, 32, 32));
    static const size_t wrong1[] = { 0, 19, 21, 32 }, wrong256[] = { 0, 20, 31, 33 };
    for (size_t i = 0; i < 4; i++) {
        assert_false(answer_ok(0, 16, 4096, wrong1[i], 20, 16, 4096, 32, 32));
        assert_false(answer_ok(0, 16, 4096, 20, wrong1[i], 16, 4096, 32, 32));
        assert_false(answer_ok(0, 16, 4096, 20, 20, 16, 4096, wrong256[i], 32));
        assert_false(answer_ok(0, 16, 4096, 20, 20, 16, 4096, 32, wrong256[i]));
    }
}

static void test_auth_answer_zero_iterations(void **state)
{
    assert_false(answer_ok(0, 16, 0, 20, 20, 16, 4096, 32, 32));
    assert_false(answer_ok(0, 16, 4096, 20, 20, 16, 0, 32, 32));
}

static void test_auth_answer_failure_has_no_creds(void **state)
{
    for (uint8_t st = SMPROTO_AUTH_NO_USER; st <= SMPROTO_AUTH_ERROR; st++) {
        assert_true(payload_ok(SMPROTO_AUTH_ANSWER, 1, &st, 1));
        assert_false(answer_ok(st, 16, 4096, 20, 20, 16, 4096, 32, 32));
    }
    /* And success needs them. */
    uint8_t ok = SMPROTO_AUTH_OK;
    assert_false(payload_ok(SMPROTO_AUTH_ANSWER, 1, &ok, 1));
}

static void test_undefined_values(void **state)
{
    uint8_t st = SMPROTO_AUTH_ERROR + 1;
    assert_false(payload_ok(SMPROTO_AUTH_ANSWER, 1, &st, 1));
    st = 255;
    assert_false(payload_ok(SMPROTO_AUTH_ANSWER, 1, &st, 1));
    st = SMPROTO_BOUND_CONSTRAINT + 1;
    assert_false(payload_ok(SMPROTO_BOUND, 1, &st, 1));
    assert_true(payload_ok(SMPROTO_END, 1, "\4", 2));
    assert_false(payload_ok(SMPROTO_END, 1, "\5", 2));
    assert_false(payload_ok(SMPROTO_END, 1, "\377", 2));
    assert_true(payload_ok(SMPROTO_BIND, 1, "h\0u\0r\0\1", 7));
    assert_false(payload_ok(SMPROTO_BIND, 1, "h\0u\0r\0\2", 7));
    assert_false(payload_ok(SMPROTO_BIND, 1, "h\0u\0r\0\3", 7));
    assert_false(payload_ok(SMPROTO_BIND, 1, "h\0u\0r\0\200", 7));
}

static void test_bound_status_and_jid(void **state)
{
    assert_true(payload_ok(SMPROTO_BOUND, 1, "\0a@b/c", 7));
    assert_false(payload_ok(SMPROTO_BOUND, 1, "\0", 1));          /* ok without a JID */
    assert_true(payload_ok(SMPROTO_BOUND, 1, "\1", 1));
    assert_false(payload_ok(SMPROTO_BOUND, 1, "\1a@b/c", 7));     /* failure with a JID */
    assert_false(payload_ok(SMPROTO_BOUND, 1, "\3", 2));          /* failure with an empty one */
}

static void test_ping_shape(void **state)
{
    uint8_t t[9] = { 0 };
    assert_true(payload_ok(SMPROTO_PING, 0, t, 8));
    assert_true(payload_ok(SMPROTO_PONG, 0, t, 8));
    assert_false(payload_ok(SMPROTO_PING, 0, t, 7));
    assert_false(payload_ok(SMPROTO_PING, 0, t, 9));
    assert_false(payload_ok(SMPROTO_PONG, 0, t, 0));
    /* Link frames carry no session. */
    assert_false(payload_ok(SMPROTO_PING, 1, t, 8));
    assert_false(payload_ok(SMPROTO_PONG, UINT64_MAX, t, 8));
}

static void test_ack_shape(void **state)
{
    uint8_t t[9] = { 0 };
    assert_true(payload_ok(SMPROTO_ACK, 0, t, 8));
    assert_false(payload_ok(SMPROTO_ACK, 0, t, 0));
    assert_false(payload_ok(SMPROTO_ACK, 0, t, 4));
    assert_false(payload_ok(SMPROTO_ACK, 0, t, 7));
    for (int extra = 0; extra < 256; extra += 85) {    /* trailing bytes, NUL included */
        t[8] = (uint8_t)extra;
        assert_false(payload_ok(SMPROTO_ACK, 0, t, 9));
    }
    /* ACK belongs to the link. */
    assert_false(payload_ok(SMPROTO_ACK, 1, t, 8));
    assert_false(payload_ok(SMPROTO_ACK, UINT64_MAX, t, 8));

    /* A PING is not an ACK (nor the reverse), and a refusal leaves the output alone. */
    buf b = BUF_INIT;
    smproto_put_ping(&b, SMPROTO_PING, 5);
    smproto_frame f = one_frame(&b);
    uint64_t v = 42;
    assert_false(smproto_get_ack(&f, &v));
    assert_true(v == 42);
    buf_free(&b);
    smproto_put_ack(&b, 5);
    f = one_frame(&b);
    assert_false(smproto_get_ping(&f, &v));
    assert_true(v == 42);
    f.sid = 1;
    assert_false(smproto_get_ack(&f, &v));
    assert_true(v == 42);
    buf_free(&b);
}

static void test_state_shape(void **state)
{
    /* Any bytes for a session, up to SMPROTO_STATE_MAX: the record is the modules', not the
     * codec's. */
    uint8_t *p = calloc(1, SMPROTO_STATE_MAX + 1);
    assert_true(payload_ok(SMPROTO_STATE, 1, p, 0));
    assert_true(payload_ok(SMPROTO_STATE, 1, "\377\0\1", 3));
    assert_true(payload_ok(SMPROTO_STATE, 1, p, SMPROTO_STATE_MAX));
    assert_false(payload_ok(SMPROTO_STATE, 1, p, SMPROTO_STATE_MAX + 1));
    free(p);
    /* STATE is a session's: session id 0 is refused. */
    assert_false(payload_ok(SMPROTO_STATE, 0, "\1", 1));
    assert_true(payload_ok(SMPROTO_STATE, UINT64_MAX, "\1", 1));

    /* A BOUND failure has the same bytes but is not a STATE; a refusal leaves the output alone. */
    buf b = BUF_INIT;
    smproto_put_bound(&b, 1, SMPROTO_BOUND_CONFLICT, NULL);
    smproto_frame f = one_frame(&b);
    const uint8_t *record = (const uint8_t *)"untouched";
    size_t len = 5;
    assert_false(smproto_get_state(&f, &record, &len));
    assert_string_equal((const char *)record, "untouched");
    assert_int_equal(len, 5);
    buf_free(&b);
}

/* UNDELIVERED: a session's stanza, byte for byte; never empty, never for session 0. */
static void test_undelivered(void **state)
{
    static const char xml[] = "<message from='a@b/c' to='d@e/f' type='chat'><body>x</body></message>";
    buf b = BUF_INIT;
    smproto_put_undelivered(&b, smproto_sid(3, 4, 5), xml, sizeof(xml) - 1);
    assert_int_equal(buf_len(&b), SMPROTO_HEADER + sizeof(xml) - 1);
    smproto_frame f = one_frame(&b);
    assert_int_equal(f.type, SMPROTO_UNDELIVERED);
    assert_true(f.sid == smproto_sid(3, 4, 5));
    const char *got = NULL;
    size_t len = 0;
    assert_true(smproto_get_undelivered(&f, &got, &len));
    assert_ptr_equal(got, (const char *)f.payload);
    assert_int_equal(len, sizeof(xml) - 1);
    assert_memory_equal(got, xml, len);
    buf_free(&b);

    /* The payload is opaque to the decoder (the SM parses it), but a maximal one fits. */
    char *big = repeat('x', SMPROTO_MAX_PAYLOAD);
    smproto_put_undelivered(&b, UINT64_MAX, big, SMPROTO_MAX_PAYLOAD);
    f = one_frame(&b);
    assert_true(smproto_get_undelivered(&f, &got, &len));
    assert_int_equal(len, SMPROTO_MAX_PAYLOAD);
    free(big);
    buf_free(&b);

    assert_true(payload_ok(SMPROTO_UNDELIVERED, 1, "<iq/>", 5));
    assert_true(payload_ok(SMPROTO_UNDELIVERED, 1, "x", 1));
    assert_false(payload_ok(SMPROTO_UNDELIVERED, 1, "", 0));        /* no stanza */
    assert_false(payload_ok(SMPROTO_UNDELIVERED, 0, "<iq/>", 5));   /* no session */

    /* Outputs stay as they were when it is refused. */
    raw_frame(&b, SMPROTO_UNDELIVERED, 0, "<iq/>", 5);
    f = one_frame(&b);
    got = "G";
    len = 42;
    assert_false(smproto_get_undelivered(&f, &got, &len));
    assert_string_equal(got, "G");
    assert_int_equal(len, 42);
    buf_free(&b);

    /* A STANZA frame with the same payload is not an UNDELIVERED. */
    smproto_put(&b, SMPROTO_STANZA, 1, "<iq/>", 5);
    f = one_frame(&b);
    assert_false(smproto_get_undelivered(&f, &got, &len));
    buf_free(&b);
}

static void test_module_round_trip(void **state)
{
    buf b = BUF_INIT;
    assert_true(smproto_put_module(&b, 7, "smacks", "\0\1\2", 3));
    smproto_frame f = one_frame(&b);
    const char *name;
    size_t nl, len;
    const uint8_t *body;
    assert_true(smproto_get_module(&f, &name, &nl, &body, &len));
    assert_int_equal(nl, 6);
    assert_memory_equal(name, "smacks", 6);
    assert_int_equal(len, 3);
    assert_memory_equal(body, "\0\1\2", 3);
    assert_true(f.sid == 7);
    buf_free(&b);
    /* An empty body is a message too. */
    assert_true(smproto_put_module(&b, 7, "csi", NULL, 0));
    f = one_frame(&b);
    assert_true(smproto_get_module(&f, &name, &nl, &body, &len));
    assert_int_equal(len, 0);
    buf_free(&b);
    /* A body that would not fit in a frame is refused, nothing appended. */
    assert_false(smproto_put_module(&b, 7, "smacks", "", SMPROTO_MAX_PAYLOAD - 6));
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
}

static void test_module_shape(void **state)
{
    assert_true(payload_ok(SMPROTO_MODULE, 1, "\1a", 2));
    assert_true(payload_ok(SMPROTO_MODULE, 1, "\6smacksxyz", 10));
    assert_true(payload_ok(SMPROTO_MODULE, 1, "\3a-_\0", 5));
    assert_false(payload_ok(SMPROTO_MODULE, 1, "", 0));          /* no name */
    assert_false(payload_ok(SMPROTO_MODULE, 1, "\0", 1));        /* an empty name */
    assert_false(payload_ok(SMPROTO_MODULE, 1, "\7smacks", 7));  /* name longer than the payload */
    assert_false(payload_ok(SMPROTO_MODULE, 1, "\1A", 2));       /* not [a-z0-9_-] */
    assert_false(payload_ok(SMPROTO_MODULE, 1, "\1\0", 2));
    assert_false(payload_ok(SMPROTO_MODULE, 1, "\1/", 2));
    assert_true(payload_ok(SMPROTO_MODULE, 0, "\1a", 2));        /* about the front itself (v5) */
    char longname[1 + SMPROTO_MODULE_NAME_MAX + 1];
    memset(longname, 'a', sizeof longname);
    longname[0] = SMPROTO_MODULE_NAME_MAX;
    assert_true(payload_ok(SMPROTO_MODULE, 1, longname, 1 + SMPROTO_MODULE_NAME_MAX));
    longname[0] = SMPROTO_MODULE_NAME_MAX + 1;
    assert_false(payload_ok(SMPROTO_MODULE, 1, longname, 1 + SMPROTO_MODULE_NAME_MAX + 1));
}

/* The only frame in b relabelled as every type in turn: exactly the types in same_shape (a mask)
 * accept it, each by its own decoder alone. */
static void assert_accepted_as(const buf *b, unsigned same_shape)
{
    smproto_frame f = one_frame(b);
    for (int t = SMPROTO_STANZA; t <= SMPROTO_TYPE_MAX; t++) {
        f.type = (smproto_type)t;
        assert_int_equal(accepted_by(&f), same_shape & (1u << t));
    }
}

static void test_wrong_type(void **state)
{
    /* Decoders go by the frame's type: two strings are an AUTH_QUERY or a REGISTER (the same
     * shape) and nothing else, and only the decoder of the frame's type says yes. */
    buf b = BUF_INIT;
    smproto_put_auth_query(&b, 0, "h", "u");
    smproto_frame f = one_frame(&b);
    assert_int_equal(accepted_by(&f), 1u << SMPROTO_AUTH_QUERY);
    assert_accepted_as(&b, 1u << SMPROTO_AUTH_QUERY | 1u << SMPROTO_REGISTER);
    buf_free(&b);

    /* 8 bytes on the link: a token or a count, never a RESYNC (a sid with no JID). */
    smproto_put_ping(&b, SMPROTO_PING, 0);
    assert_accepted_as(&b, 1u << SMPROTO_PING | 1u << SMPROTO_PONG | 1u << SMPROTO_ACK);
    buf_free(&b);
    smproto_put_ack(&b, UINT64_MAX);
    assert_accepted_as(&b, 1u << SMPROTO_PING | 1u << SMPROTO_PONG | 1u << SMPROTO_ACK);
    buf_free(&b);

    /* One byte for a session: a STATE record that reads as a failure status, or as an opaque
     * stanza. */
    smproto_put_state(&b, 1, (const uint8_t *)"\1", 1);
    assert_accepted_as(&b, 1u << SMPROTO_STATE | 1u << SMPROTO_AUTH_ANSWER | 1u << SMPROTO_BOUND |
                               1u << SMPROTO_UNDELIVERED);
    buf_free(&b);
    smproto_put_state(&b, 1, (const uint8_t *)"\0", 1);    /* status 0 is success, which needs
                                                          * more */
    assert_accepted_as(&b, 1u << SMPROTO_STATE | 1u << SMPROTO_UNDELIVERED);
    buf_free(&b);

    size_t rs = smproto_resync_begin(&b);
    add_entry(&b, 1, "a@b/c", "", "");
    smproto_resync_end(&b, rs);
    assert_accepted_as(&b, 1u << SMPROTO_RESYNC);
    buf_free(&b);
}

static void test_outputs_untouched_on_failure(void **state)
{
    buf b = BUF_INIT;
    raw_frame(&b, SMPROTO_BIND, 1, "h\0u\0r\0\2", 7);
    smproto_frame f = one_frame(&b);
    const char *h = "H", *u = "U", *r = "R";
    uint8_t fl = 42;
    assert_false(smproto_get_bind(&f, &h, &u, &r, &fl));
    assert_string_equal(h, "H");
    assert_string_equal(u, "U");
    assert_string_equal(r, "R");
    assert_int_equal(fl, 42);

    bytes p = { .len = 0 };
    put8(&p, 0);
    put_mech(&p, 16, 4096, 20, 20);
    put_mech(&p, 16, 4096, 32, 31);
    raw_frame(&b, SMPROTO_AUTH_ANSWER, 1, p.p, p.len);
    f = one_frame(&b);
    smproto_creds c, before;
    memset(&c, 0x5a, sizeof(c));
    before = c;
    uint8_t st = 42;
    assert_false(smproto_get_auth_answer(&f, &st, &c));
    assert_int_equal(st, 42);
    assert_memory_equal(&c, &before, sizeof(c));
    buf_free(&b);
}

/* ---- RESYNC ------------------------------------------------------------------------------ */

/* The next entry of rd, asserting there is one and it holds these values. */
static void assert_next_entry(smproto_resync_reader *rd, uint64_t sid, const char *full_jid,
                              const char *record, const char *presence)
{
    smproto_resync_entry e;
    assert_int_equal(smproto_resync_next(rd, &e), 1);
    assert_true(e.sid == sid);
    assert_string_equal(e.full_jid, full_jid);
    assert_int_equal(e.state_len, strlen(record));
    assert_memory_equal(e.state, record, e.state_len);
    assert_string_equal(e.presence, presence);
}

static void test_resync_entry_bytes(void **state)
{
    static const char presence[] = "<presence from='a@b/c'><show>away</show></presence>";
    buf b = BUF_INIT, again = BUF_INIT;
    size_t rs = smproto_resync_begin(&b);
    add_entry(&b, 0x0102030405060708ull, "a@b/c", STATE_SAMPLE, presence);
    add_entry(&b, UINT64_MAX, "", "", "");
    smproto_resync_end(&b, rs);

    /* u64 sid, JID and NUL, u16 record length and the record, presence and NUL; one entry after
     * the other. */
    size_t first = 8 + 6 + 2 + 9 + sizeof(presence), second = 8 + 1 + 2 + 1;
    uint8_t want[SMPROTO_HEADER + 8 + 6 + 2 + 9 + sizeof(presence) + 8 + 1 + 2 + 1];
    uint8_t *p = wire_u64(wire_header(want, (uint32_t)(first + second), SMPROTO_RESYNC, 0),
                          0x0102030405060708ull);
    memcpy(p, "a@b/c", 6);
    memcpy(p + 6, "\0\11" STATE_SAMPLE, 11);
    memcpy(p + 17, presence, sizeof(presence));
    p = wire_u64(p + 17 + sizeof(presence), UINT64_MAX);
    memcpy(p, "\0\0\0\0", 4);
    assert_int_equal(p + 4 - want, sizeof(want));
    assert_int_equal(buf_len(&b), sizeof(want));
    assert_memory_equal(buf_data(&b), want, sizeof(want));

    smproto_resync_entry e = { .full_jid = "a@b/c", .state_len = 9, .presence = presence };
    assert_int_equal(smproto_resync_entry_size(&e), first);
    e = (smproto_resync_entry){ .sid = UINT64_MAX, .full_jid = "", .presence = "" };
    assert_int_equal(smproto_resync_entry_size(&e), second);

    /* Read back (strings pointing into the frame), and re-encoded to the same bytes. */
    smproto_frame f = one_frame(&b);
    smproto_resync_reader rd;
    smproto_resync_read(&f, &rd);
    rs = smproto_resync_begin(&again);
    int r;
    while ((r = smproto_resync_next(&rd, &e)) == 1) {
        assert_true((const uint8_t *)e.full_jid > f.payload &&
                    (const uint8_t *)e.presence < f.payload + f.len);
        smproto_resync_add(&again, &e);
    }
    assert_int_equal(r, 0);
    smproto_resync_end(&again, rs);
    assert_int_equal(buf_len(&again), buf_len(&b));
    assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
    smproto_resync_read(&f, &rd);
    assert_next_entry(&rd, 0x0102030405060708ull, "a@b/c", STATE_SAMPLE, presence);
    assert_next_entry(&rd, UINT64_MAX, "", "", "");
    assert_int_equal(smproto_resync_next(&rd, &e), 0);
    buf_free(&b);
    buf_free(&again);
}

/* The STATE record of entry i of the many-entry tests: 0 to 4 bytes. */
static const char *many_records[] = { "", "\1", "\3ab\1", STATE_SAMPLE, "\377\376" };
#define MANY_RECORD(i) many_records[(i) % (sizeof(many_records) / sizeof(many_records[0]))]

/* Entry i of the many-entry tests: each record in turn, no presence for every third. */
static void many_entry(unsigned i, char *jid, size_t jid_size, char *presence,
                       size_t presence_size)
{
    snprintf(jid, jid_size, "user%u@example.com/r%u", i, i * 7);
    if (i % 3 == 0)
        presence[0] = '\0';
    else
        snprintf(presence, presence_size, "<presence from='%s'><status>\xe2\x82\xac%u</status>"
                 "</presence>", jid, i);
}

static void test_resync_many(void **state)
{
    enum { N = 5000 };
    buf b = BUF_INIT;
    /* Something before it, and partly consumed: offsets are from buf_data. */
    smproto_put_ping(&b, SMPROTO_PING, 1);
    smproto_put(&b, SMPROTO_STANZA, 1, "<x/>", 4);
    buf_consume(&b, 3);
    size_t before = buf_len(&b);
    size_t start = smproto_resync_begin(&b);
    assert_int_equal(start, before);
    char jid[64], presence[160];
    size_t payload = 0;
    for (unsigned i = 0; i < N; i++) {
        many_entry(i, jid, sizeof(jid), presence, sizeof(presence));
        const char *j = i == N / 2 ? "" : jid;
        const char *record = MANY_RECORD(i);
        smproto_resync_entry e = { .sid = smproto_sid(i & 0xff, i, ~i), .full_jid = j,
                                   .state = (const uint8_t *)record, .state_len = strlen(record),
                                   .presence = presence };
        size_t size = 8 + strlen(j) + 1 + 2 + strlen(record) + strlen(presence) + 1;
        assert_int_equal(smproto_resync_entry_size(&e), size);
        smproto_resync_add(&b, &e);
        payload += size;
    }
    smproto_resync_end(&b, start);
    assert_int_equal(buf_len(&b) - start, SMPROTO_HEADER + payload);
    buf_consume(&b, start);

    smproto_frame f = one_frame(&b);
    assert_int_equal(f.type, SMPROTO_RESYNC);
    assert_true(f.sid == 0);
    assert_int_equal(f.len, payload);
    smproto_resync_reader rd;
    smproto_resync_read(&f, &rd);
    for (unsigned i = 0; i < N; i++) {
        many_entry(i, jid, sizeof(jid), presence, sizeof(presence));
        assert_next_entry(&rd, smproto_sid(i & 0xff, i, ~i), i == N / 2 ? "" : jid,
                          MANY_RECORD(i), presence);
    }
    smproto_resync_entry e;
    assert_int_equal(smproto_resync_next(&rd, &e), 0);
    assert_int_equal(smproto_resync_next(&rd, &e), 0);
    buf_free(&b);
}

/* A frame written in place (smproto_begin, the payload appended, smproto_end) is the frame
 * smproto_put makes; given up (truncated back), it leaves nothing. */
static void test_in_place(void **state)
{
    static const char xml[] = "<message to='a@b'><body>in place</body></message>";
    buf a = BUF_INIT, b = BUF_INIT;
    smproto_put_ping(&a, SMPROTO_PING, 1);     /* something before it */
    smproto_put_ping(&b, SMPROTO_PING, 1);
    smproto_put(&a, SMPROTO_STANZA, 77, xml, strlen(xml));
    size_t start = smproto_begin(&b, SMPROTO_STANZA, 77);
    buf_append(&b, xml, 10);
    buf_append(&b, xml + 10, strlen(xml) - 10);
    smproto_end(&b, start);
    assert_int_equal(buf_len(&a), buf_len(&b));
    assert_memory_equal(buf_data(&a), buf_data(&b), buf_len(&a));
    start = smproto_begin(&b, SMPROTO_STANZA, 78);
    buf_append(&b, "<partial", 8);
    buf_truncate(&b, start);
    assert_int_equal(buf_len(&a), buf_len(&b));
    /* An empty payload and the largest one. */
    buf_free(&a);
    buf_free(&b);
    start = smproto_begin(&b, SMPROTO_STANZA, 1);
    smproto_end(&b, start);
    smproto_put(&a, SMPROTO_STANZA, 1, NULL, 0);
    assert_memory_equal(buf_data(&a), buf_data(&b), SMPROTO_HEADER);
    start = smproto_begin(&b, SMPROTO_STANZA, 2);
    memset(buf_reserve(&b, SMPROTO_MAX_PAYLOAD), 'x', SMPROTO_MAX_PAYLOAD);
    buf_commit(&b, SMPROTO_MAX_PAYLOAD);
    smproto_end(&b, start);
    smproto_frame f;
    size_t used;
    assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&b) + start, buf_len(&b) - start,
                                        &f, &used), SMPROTO_FRAME_OK);
    assert_int_equal(f.len, SMPROTO_MAX_PAYLOAD);
    buf_free(&a);
    buf_free(&b);
}

static void test_resync_empty(void **state)
{
    buf b = BUF_INIT;
    smproto_resync_end(&b, smproto_resync_begin(&b));
    static const uint8_t want[SMPROTO_HEADER] = { 0, 0, 0, 0, SMPROTO_RESYNC };
    assert_int_equal(buf_len(&b), SMPROTO_HEADER);
    assert_memory_equal(buf_data(&b), want, SMPROTO_HEADER);
    smproto_frame f = one_frame(&b);
    smproto_resync_reader rd;
    smproto_resync_read(&f, &rd);
    smproto_resync_entry e;
    assert_int_equal(smproto_resync_next(&rd, &e), 0);
    buf_free(&b);
}

/* Entry i of the several-frame test: a 1023-byte JID and a presence of 0 to 4000 bytes. */
static smproto_resync_entry big_entry(unsigned i, char *jid, char *presence_buf)
{
    jid[0] = (char)('a' + i % 26);
    const char *record = MANY_RECORD(i);
    return (smproto_resync_entry){ .sid = i + 1u, .full_jid = jid,
                                   .state = (const uint8_t *)record, .state_len = strlen(record),
                                   .presence = presence_buf + 4000 - (i * 997u) % 4001 };
}

/* Fills frames as the front does on a reconnect, starting a new one whenever the next entry would
 * overflow (by smproto_resync_entry_size), then reads every entry back: each frame is within the
 * bound and full (its successor's first entry would not have fit). */
static void test_resync_several_frames(void **state)
{
    enum { N = 3000 };
    char *jid = repeat('j', 1023), *presence = repeat('p', 4000);
    buf b = BUF_INIT;
    size_t start = smproto_resync_begin(&b);
    unsigned frames = 1;
    for (unsigned i = 0; i < N; i++) {
        smproto_resync_entry e = big_entry(i, jid, presence);
        if (buf_len(&b) - start - SMPROTO_HEADER + smproto_resync_entry_size(&e) >
            SMPROTO_MAX_PAYLOAD) {
            smproto_resync_end(&b, start);
            start = smproto_resync_begin(&b);
            frames++;
        }
        smproto_resync_add(&b, &e);
    }
    smproto_resync_end(&b, start);
    assert_true(frames >= 3);

    unsigned next = 0, seen = 0;
    size_t pos = 0, prev_len = 0;
    while (pos < buf_len(&b)) {
        smproto_frame f;
        size_t used;
        assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&b) + pos,
                                            buf_len(&b) - pos, &f, &used),
                         SMPROTO_FRAME_OK);
        assert_int_equal(f.type, SMPROTO_RESYNC);
        assert_true(f.len <= SMPROTO_MAX_PAYLOAD);
        smproto_resync_entry want = big_entry(next, jid, presence);
        if (seen > 0)
            assert_true(prev_len + smproto_resync_entry_size(&want) > SMPROTO_MAX_PAYLOAD);
        smproto_resync_reader rd;
        smproto_resync_read(&f, &rd);
        smproto_resync_entry e;
        size_t sum = 0;
        int r;
        while ((r = smproto_resync_next(&rd, &e)) == 1) {
            want = big_entry(next, jid, presence);
            assert_true(e.sid == want.sid);
            assert_int_equal(strlen(e.full_jid), 1023);
            assert_int_equal(e.full_jid[0], want.full_jid[0]);
            assert_int_equal(e.state_len, want.state_len);
            assert_memory_equal(e.state, want.state, want.state_len);
            assert_string_equal(e.presence, want.presence);
            sum += smproto_resync_entry_size(&e);
            next++;
        }
        assert_int_equal(r, 0);
        assert_int_equal(sum, f.len);
        prev_len = f.len;
        seen++;
        pos += used;
    }
    assert_int_equal(seen, frames);
    assert_int_equal(next, N);
    buf_free(&b);
    free(jid);
    free(presence);
}

/* One entry filling a frame exactly, by its JID or by its presence. */
static void test_resync_exactly_max(void **state)
{
    char *jid = repeat('m', SMPROTO_MAX_PAYLOAD - 8 - 1 - 2 - 9 - 1);
    char *presence = repeat('q', SMPROTO_MAX_PAYLOAD - 8 - 6 - 2 - 1);
    const smproto_resync_entry entries[] = {
        { .sid = 5, .full_jid = jid, .state = (const uint8_t *)STATE_SAMPLE, .state_len = 9,
          .presence = "" },
        { .sid = 6, .full_jid = "a@b/c", .presence = presence },
    };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(smproto_resync_entry_size(&entries[i]), SMPROTO_MAX_PAYLOAD);
        buf b = BUF_INIT;
        size_t start = smproto_resync_begin(&b);
        smproto_resync_add(&b, &entries[i]);
        smproto_resync_end(&b, start);
        smproto_frame f = one_frame(&b);
        assert_int_equal(f.len, SMPROTO_MAX_PAYLOAD);
        smproto_resync_reader rd;
        smproto_resync_read(&f, &rd);
        assert_next_entry(&rd, entries[i].sid, entries[i].full_jid, i == 0 ? STATE_SAMPLE : "",
                          entries[i].presence);
        smproto_resync_entry e;
        assert_int_equal(smproto_resync_next(&rd, &e), 0);
        buf_free(&b);
    }
    free(jid);
    free(presence);
}

/* A RESYNC payload of one entry: sid, JID, STATE record (a string here), presence (each NUL
 * included). */
static size_t resync_payload(uint8_t *p, uint64_t sid, const char *jid, const char *record,
                             const char *presence)
{
    uint8_t *q = wire_u64(p, sid);
    memcpy(q, jid, strlen(jid) + 1);
    q += strlen(jid) + 1;
    *q++ = (uint8_t)(strlen(record) >> 8);
    *q++ = (uint8_t)strlen(record);
    memcpy(q, record, strlen(record));
    q += strlen(record);
    memcpy(q, presence, strlen(presence) + 1);
    return (size_t)(q - p) + strlen(presence) + 1;
}

static void test_resync_malformed(void **state)
{
    smproto_resync_entry e;
    smproto_resync_reader rd;
    buf b = BUF_INIT;
    uint8_t p[128];

    /* A good entry, then a truncated one: the first comes out, then -1, and -1 stays. */
    size_t n = resync_payload(p, 1, "a", "\7carbons\1\1", "<presence/>");
    memcpy(p + n, "\0\0\0\0", 4);
    raw_frame(&b, SMPROTO_RESYNC, 0, p, n + 4);
    smproto_frame f = one_frame(&b);
    smproto_resync_read(&f, &rd);
    assert_next_entry(&rd, 1, "a", "\7carbons\1\1", "<presence/>");
    const smproto_resync_entry sentinel = { 77, "J", (const uint8_t *)"S", 1, "P" };
    e = sentinel;
    assert_int_equal(smproto_resync_next(&rd, &e), -1);
    assert_int_equal(smproto_resync_next(&rd, &e), -1);
    /* The entry is left as it was. */
    assert_true(e.sid == 77);
    assert_string_equal(e.full_jid, "J");
    assert_int_equal(e.state_len, 1);
    assert_string_equal(e.presence, "P");

    /* Every truncation of a whole entry, and any byte after one, is refused: only the empty
     * payload and the whole entry are. */
    n = resync_payload(p, smproto_sid(1, 2, 3), "a@b/c", STATE_SAMPLE, "<p/>");
    assert_true(payload_ok(SMPROTO_RESYNC, 0, p, n));
    assert_true(payload_ok(SMPROTO_RESYNC, 0, p, 0));
    for (size_t len = 1; len < n; len++)
        assert_false(payload_ok(SMPROTO_RESYNC, 0, p, len));
    for (int extra = 0; extra < 256; extra += 51) {
        p[n] = (uint8_t)extra;
        assert_false(payload_ok(SMPROTO_RESYNC, 0, p, n + 1));
    }

    /* Session id 0 is no session, first or after a good entry. */
    n = resync_payload(p, 0, "a@b/c", "", "");
    assert_false(payload_ok(SMPROTO_RESYNC, 0, p, n));
    n = resync_payload(p, 1, "a@b/c", "", "");
    n += resync_payload(p + n, 0, "d@e/f", "", "");
    assert_false(payload_ok(SMPROTO_RESYNC, 0, p, n));
    raw_frame(&b, SMPROTO_RESYNC, 0, p, n);
    f = one_frame(&b);
    smproto_resync_read(&f, &rd);
    assert_next_entry(&rd, 1, "a@b/c", "", "");
    assert_int_equal(smproto_resync_next(&rd, &e), -1);

    /* A sid with no JID at all, a JID with no NUL, a JID with half a record length after it (the
     * version 2 entry had one flags byte), a record shorter than its length, a record with no
     * presence, a presence with no NUL. */
    assert_false(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1", 8));
    assert_false(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b", 11));
    assert_false(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b", 12));
    assert_false(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b\0\1", 13));
    assert_false(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b\0\0\2x", 15));
    assert_false(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b\0\0\1x", 15));
    assert_false(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b\0\0\1x<p/>", 19));
    assert_true(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b\0\0\1x<p/>", 20));
    assert_true(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b\0\0\1x", 16));
    assert_true(payload_ok(SMPROTO_RESYNC, 0, "\0\0\0\0\0\0\0\1a@b\0\0\0", 15));

    /* A record longer than SMPROTO_STATE_MAX is refused even when the bytes are there. */
    {
        size_t big = 8 + 4 + 2 + SMPROTO_STATE_MAX + 1 + 1;
        uint8_t *q = calloc(1, big);
        memcpy(q, "\0\0\0\0\0\0\0\1a@b", 12);
        q[12] = (uint8_t)((SMPROTO_STATE_MAX + 1) >> 8);
        q[13] = (uint8_t)(SMPROTO_STATE_MAX + 1);
        memset(q + 14, 'x', SMPROTO_STATE_MAX + 1);
        assert_false(payload_ok(SMPROTO_RESYNC, 0, q, big));
        q[13] = (uint8_t)SMPROTO_STATE_MAX;
        q[12] = (uint8_t)(SMPROTO_STATE_MAX >> 8);
        q[14 + SMPROTO_STATE_MAX] = 0;
        assert_true(payload_ok(SMPROTO_RESYNC, 0, q, big - 1));
        free(q);
    }

    /* A NUL inside the presence leaves bytes that are no entry. */
    n = resync_payload(p, 1, "a@b/c", "", "<p/>");
    p[n - 3] = '\0';
    assert_false(payload_ok(SMPROTO_RESYNC, 0, p, n));

    /* RESYNC belongs to the link: a session id is refused, even on an empty frame. */
    n = resync_payload(p, 1, "a@b/c", "", "");
    assert_true(payload_ok(SMPROTO_RESYNC, 0, p, n));
    assert_false(payload_ok(SMPROTO_RESYNC, 1, p, n));
    raw_frame(&b, SMPROTO_RESYNC, 7, NULL, 0);
    f = one_frame(&b);
    smproto_resync_read(&f, &rd);
    assert_int_equal(smproto_resync_next(&rd, &e), -1);
    buf_free(&b);
}

/* ---- encoder misuse ---------------------------------------------------------------------- */

static void put_type_zero(void)
{
    buf b = BUF_INIT;
    smproto_put(&b, (smproto_type)0, 1, "", 0);
}

/* One byte over the bound, by the JID or by the presence (test_resync_exactly_max fits). */
static void put_oversized_resync(void)
{
    char *jid = repeat('m', SMPROTO_MAX_PAYLOAD - 11);
    buf b = BUF_INIT;
    size_t start = smproto_resync_begin(&b);
    add_entry(&b, 5, jid, "", "");
    smproto_resync_end(&b, start);
}

static void put_oversized_resync_presence(void)
{
    char *presence = repeat('q', SMPROTO_MAX_PAYLOAD - 16);
    buf b = BUF_INIT;
    size_t start = smproto_resync_begin(&b);
    add_entry(&b, 5, "a@b/c", "", presence);
    smproto_resync_end(&b, start);
}

static void put_resync_state_too_long(void)
{
    buf b = BUF_INIT;
    smproto_resync_begin(&b);
    uint8_t *record = calloc(1, SMPROTO_STATE_MAX + 1);
    smproto_resync_entry e = { .sid = 1, .full_jid = "a@b/c", .state = record,
                               .state_len = SMPROTO_STATE_MAX + 1, .presence = "" };
    smproto_resync_add(&b, &e);
}

static void put_resync_sid_zero(void)
{
    buf b = BUF_INIT;
    smproto_resync_begin(&b);
    add_entry(&b, 0, "a@b/c", "", "");
}

static void put_state_sid_zero(void)
{
    buf b = BUF_INIT;
    smproto_put_state(&b, 0, (const uint8_t *)STATE_SAMPLE, 9);
}

static void put_in_place_too_long(void)
{
    buf b = BUF_INIT;
    size_t start = smproto_begin(&b, SMPROTO_STANZA, 1);
    memset(buf_reserve(&b, SMPROTO_MAX_PAYLOAD + 1), 'x', SMPROTO_MAX_PAYLOAD + 1);
    buf_commit(&b, SMPROTO_MAX_PAYLOAD + 1);
    smproto_end(&b, start);
}

static void end_without_begin(void)
{
    buf b = BUF_INIT;
    buf_append(&b, "short", 5);
    smproto_end(&b, 0);
}

static void put_state_too_long(void)
{
    buf b = BUF_INIT;
    uint8_t *record = calloc(1, SMPROTO_STATE_MAX + 1);
    smproto_put_state(&b, 1, record, SMPROTO_STATE_MAX + 1);
}

static void put_bad_bind_flags(void)
{
    buf b = BUF_INIT;
    smproto_put_bind(&b, 1, "h", "u", "r", 2);
}

static void put_bad_end_reason(void)
{
    buf b = BUF_INIT;
    smproto_put_end(&b, 1, SMPROTO_END_ERROR + 1, "");
}

static void put_ok_without_creds(void)
{
    buf b = BUF_INIT;
    smproto_put_auth_answer(&b, 1, SMPROTO_AUTH_OK, NULL);
}

static void put_ping_as_stanza(void)
{
    buf b = BUF_INIT;
    smproto_put_ping(&b, SMPROTO_STANZA, 1);
}

static void put_empty_undelivered(void)
{
    buf b = BUF_INIT;
    smproto_put_undelivered(&b, 1, "", 0);
}

static void put_undelivered_sid_zero(void)
{
    buf b = BUF_INIT;
    smproto_put_undelivered(&b, 0, "<iq/>", 5);
}

static void put_oversized_undelivered(void)
{
    static uint8_t big[SMPROTO_MAX_PAYLOAD + 1];
    buf b = BUF_INIT;
    smproto_put_undelivered(&b, 1, big, sizeof(big));
}

static void test_encoder_misuse_aborts(void **state)
{
    assert_aborts(put_type_zero);
    assert_aborts(put_oversized_resync);
    assert_aborts(put_oversized_resync_presence);
    assert_aborts(put_resync_state_too_long);
    assert_aborts(put_resync_sid_zero);
    assert_aborts(put_state_sid_zero);
    assert_aborts(put_state_too_long);
    assert_aborts(put_in_place_too_long);
    assert_aborts(end_without_begin);
    assert_aborts(put_bad_bind_flags);
    assert_aborts(put_bad_end_reason);
    assert_aborts(put_ok_without_creds);
    assert_aborts(put_ping_as_stanza);
    assert_aborts(put_empty_undelivered);
    assert_aborts(put_undelivered_sid_zero);
    assert_aborts(put_oversized_undelivered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_bytes),
        cmocka_unit_test(test_stanza_sizes),
        cmocka_unit_test(test_sid_helpers),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_counted),
        cmocka_unit_test(test_auth_query),
        cmocka_unit_test(test_auth_answer_ok),
        cmocka_unit_test(test_auth_answer_failures),
        cmocka_unit_test(test_bind),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_end),
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_ping_pong),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_split_every_boundary),
        cmocka_unit_test(test_header_short_is_partial),
        cmocka_unit_test(test_header_length_over_max),
        cmocka_unit_test(test_header_bad_type),
        cmocka_unit_test(test_header_flags),
        cmocka_unit_test(test_header_reserved),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_trailing_byte_rejected),
        cmocka_unit_test(test_missing_nul),
        cmocka_unit_test(test_interior_nul),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_auth_answer_salt_bound),
        cmocka_unit_test(test_auth_answer_key_lengths),
        cmocka_unit_test(test_auth_answer_zero_iterations),
        cmocka_unit_test(test_auth_answer_failure_has_no_creds),
        cmocka_unit_test(test_undefined_values),
        cmocka_unit_test(test_bound_status_and_jid),
        cmocka_unit_test(test_ping_shape),
        cmocka_unit_test(test_ack_shape),
        cmocka_unit_test(test_state_shape),
        cmocka_unit_test(test_module_round_trip),
        cmocka_unit_test(test_module_shape),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_outputs_untouched_on_failure),
        cmocka_unit_test(test_resync_entry_bytes),
        cmocka_unit_test(test_resync_many),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_resync_empty),
        cmocka_unit_test(test_resync_several_frames),
        cmocka_unit_test(test_resync_exactly_max),
        cmocka_unit_test(test_resync_malformed),
        cmocka_unit_test(test_undelivered),
        cmocka_unit_test(test_encoder_misuse_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
