/* tests/unit/test_sm_upload.c — HTTP File Upload (sm/mod_upload.c, sm/upload_request.c) in the
 * harness: the service in the host's disco#items and its own disco#info with the XEP-0128 form; a
 * slot whose URLs parse, whose signature upload_sign_check accepts and whose expiry is
 * slot_lifetime away; every error of XEP-0363 §5 as the module gives it; the quota refusing once
 * enough was handed out; senders that are not the host's accounts; the options, their bounds and
 * the secret's sources; the metrics; and the request reader fed odd input directly. */
#include "tests/support/sm_harness.h"

#include <time.h>

#include "core/upload_sign.h"
#include "sm/upload.h"
#include "tests/support/dbenv.h"
#include "tests/support/tmp.h"

#define SERVICE "upload.example.org"
#define BASE "https://localhost:5281/upload"

static void request(uint64_t sid, const char *id, const char *attrs)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<iq type='get' id='%s' to='" SERVICE "'><request xmlns='"
             UPLOAD_NS "' %s/></iq>", id, attrs);
    smh_send(sid, xml);
}

/* request, answered with a stanza holding want. */
static void ask(uint64_t sid, const char *id, const char *attrs, const char *want)
{
    request(sid, id, attrs);
    char key[64];
    snprintf(key, sizeof key, "id='%s'", id);
    EXPECT('S', sid, key, want);
}

/* The text of the first record for sid holding id='ID', which must exist. */
static const char *answer(uint64_t sid, const char *id)
{
    char want[64];
    snprintf(want, sizeof want, "id='%s'", id);
    int i = smh_find('S', sid, want, NULL);
    if (i < 0) {
        smh_dump();
        fail_msg("no answer to %s", id);
    }
    return smh.recs[i].text;
}

/* The value of attribute name='...' after from in text, copied into out (XML entities of the
 * serializer undone: &amp; only, which is all a URL has). */
static void attr_after(const char *text, const char *from, const char *name, char *out,
                       size_t size)
{
    const char *p = strstr(text, from);
    assert_non_null(p);
    char key[32];
    snprintf(key, sizeof key, "%s='", name);
    p = strstr(p, key);
    assert_non_null(p);
    p += strlen(key);
    size_t n = 0;
    for (; *p && *p != '\''; p++) {
        assert_true(n + 1 < size);
        out[n++] = *p;
        if (!strncmp(p, "&amp;", 5))
            p += 4;
    }
    out[n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into out. */
static void unescape(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[n++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
}

/* A query parameter's raw value (up to '&' or the end). */
static void param(const char *query, const char *name, char *out, size_t size)
{
    char key[16];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = query;
    while ((p = strstr(p, key)) && p != query && p[-1] != '?' && p[-1] != '&')
        p++;
    assert_non_null(p);
    p += strlen(key);
    size_t n = strcspn(p, "&");
    if (n >= size)
        fail_msg("%s in %s: %zu bytes", name, query, n);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The slot answering id: checks the URLs' shape and signature (with secret), and gives the
 * decoded filename and the expiry. */
static void check_slot(uint64_t sid, const char *id, const char *secret, const char *base,
                       uint64_t size, const char *type, char filename[512], int64_t *expires)
{
    const char *text = answer(sid, id);
    assert_non_null(strstr(text, "type='result'"));
    assert_non_null(strstr(text, "<slot xmlns='" UPLOAD_NS "'>"));
    char put[4096], get[4096];
    attr_after(text, "<put", "url", put, sizeof put);
    attr_after(text, "<get", "url", get, sizeof get);
    /* GET: base/slot/name; PUT: the same and the query. */
    size_t blen = strlen(base);
    assert_int_equal(strncmp(get, base, blen), 0);
    assert_int_equal(get[blen], '/');
    const char *slot = get + blen + 1;
    for (int i = 0; i < UPLOAD_SLOT_HEX; i++)
        assert_true((slot[i] >= '0' && slot[i] <= '9') || (slot[i] >= 'a' && slot[i] <= 'f'));
    assert_int_equal(slot[UPLOAD_SLOT_HEX], '/');
    size_t glen = strlen(get);
    assert_int_equal(strncmp(put, get, glen), 0);
    assert_int_equal(put[glen], '?');
    const char *query = put + glen + 1;
    const char *name = slot + UPLOAD_SLOT_HEX + 1;
    unescape(name, strlen(name), filename);
    char e[32], s[32], t[512], t_raw[512], sig[128];
    param(query, "e", e, sizeof e);
    param(query, "s", s, sizeof s);
    param(query, "t", t_raw, sizeof t_raw);
    param(query, "sig", sig, sizeof sig);
    unescape(t_raw, strlen(t_raw), t);
    assert_string_equal(t, type);
    assert_int_equal(strtoull(s, NULL, 10), size);
    *expires = strtoll(e, NULL, 10);
    char path[1024];
    snprintf(path, sizeof path, "%.*s/%s", UPLOAD_SLOT_HEX, slot, filename);
    assert_true(upload_sign_check(secret, strlen(secret), path, size, t, *expires, sig));
    assert_false(upload_sign_check(secret, strlen(secret), path, size + 1, t, *expires, sig));
    assert_false(upload_sign_check("another secret!!", 16, path, size, t, *expires, sig));
}

static int64_t count_uploads(void)
{
    return dbenv_count(smh.db, "SELECT COUNT(*) FROM uploads");
}

static void test_disco(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='h' to='example.org'><query xmlns='http://jabber.org/protocol/"
                "disco#items'/></iq>");
    EXPECT('S', 1, "id='h'", "<item jid='" SERVICE "' name='HTTP File Upload'/>");
    /* closed.org's service is closed.org's: not listed for example.org. */
    NONE('S', 1, "upload.closed.org");
    smh_send(1, "<iq type='get' id='i' to='" SERVICE "'><query xmlns='http://jabber.org/protocol/"
                "disco#info'/></iq>");
    EXPECT('S', 1, "id='i'", "<identity category='store' type='file' name='HTTP File Upload'/>");
    EXPECT('S', 1, "id='i'", "<feature var='" UPLOAD_NS "'/>");
    EXPECT('S', 1, "id='i'", "<field var='FORM_TYPE' type='hidden'><value>" UPLOAD_NS
                             "</value></field><field var='max-file-size'><value>104857600</value>");
    smh_send(1, "<iq type='get' id='n' to='" SERVICE "'><query xmlns='http://jabber.org/protocol/"
                "disco#info' node='x'/></iq>");
    EXPECT('S', 1, "id='n'", "item-not-found");
    smh_send(1, "<iq type='get' id='it' to='" SERVICE "'><query xmlns='http://jabber.org/protocol/"
                "disco#items'/></iq>");
    EXPECT('S', 1, "id='it'", "type='result'");
    /* Anything else: not served. */
    smh_send(1, "<iq type='get' id='v' to='" SERVICE "'><query xmlns='jabber:iq:version'/></iq>");
    EXPECT('S', 1, "id='v'", "service-unavailable");
    smh_send(1, "<iq type='get' id='u' to='x@" SERVICE "'><query xmlns='jabber:iq:version'/></iq>");
    EXPECT('S', 1, "id='u'", "item-not-found");
    smh_send(1, "<message id='m' to='" SERVICE "'><body>hi</body></message>");
    EXPECT('S', 1, "id='m'", "service-unavailable");
}

static void test_slot(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    request(1, "s1", "filename='caf&#xe9; menu?.jpg' size='23456' content-type='image/jpeg'");
    char name[512];
    int64_t expires;
    check_slot(1, "s1", SMH_UPLOAD_SECRET, BASE, 23456, "image/jpeg", name, &expires);
    assert_string_equal(name, "caf\xc3\xa9 menu?.jpg");
    int64_t now = (int64_t)time(NULL);
    assert_true(expires >= now + 300 - 5 && expires <= now + 300 + 5);
    assert_int_equal(count_uploads(), 1);
    /* No content-type: an empty one, signed as such; each slot its own id. */
    request(1, "s2", "filename='a' size='1'");
    check_slot(1, "s2", SMH_UPLOAD_SECRET, BASE, 1, "", name, &expires);
    assert_string_equal(name, "a");
    assert_int_equal(count_uploads(), 2);
    char put1[4096], put2[4096];
    attr_after(answer(1, "s1"), "<put", "url", put1, sizeof put1);
    attr_after(answer(1, "s2"), "<put", "url", put2, sizeof put2);
    assert_memory_not_equal(put1 + strlen(BASE), put2 + strlen(BASE), UPLOAD_SLOT_HEX + 1);
    /* The PUT needs no headers of ours. */
    NONE('S', 1, "<header");
}

static void test_errors(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    static const struct {
        const char *attrs;
    } bad[] = {
        {"size='10'"},                                  /* no filename */
        {"filename='' size='10'"},
        {"filename='.' size='10'"},
        {"filename='..' size='10'"},
        {"filename='a/b' size='10'"},
        {"filename='/etc' size='10'"},
        {"filename='a&#x9;b' size='10'"},               /* a tab */
        {"filename='a&#xa;b' size='10'"},
        {"filename='a&#x7f;b' size='10'"},              /* DEL */
        {"filename='a&#x85;b' size='10'"},              /* C1 */
        {"filename='a'"},                               /* no size */
        {"filename='a' size=''"},
        {"filename='a' size='0'"},
        {"filename='a' size='-1'"},
        {"filename='a' size='+1'"},
        {"filename='a' size='1e9'"},
        {"filename='a' size='0x10'"},
        {"filename='a' size=' 10'"},
        {"filename='a' size='10 '"},
        {"filename='a' size='ten'"},
        {"filename='a' size='10' content-type='image'"},
        {"filename='a' size='10' content-type='image/'"},
        {"filename='a' size='10' content-type='/jpeg'"},
        {"filename='a' size='10' content-type='image/jpeg;'"},
        {"filename='a' size='10' content-type='image/jpeg; charset'"},
        {"filename='a' size='10' content-type='image/jpeg&#xa;X-Evil: 1'"},
        {"filename='a' size='10' content-type='image/jp eg'"},
        {"filename='a' size='10' content-type='text/plain; charset=\"utf-8'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%zu", i);
        request(1, id, bad[i].attrs);
        const char *text = answer(1, id);
        if (!strstr(text, "type='error'") || !strstr(text, "<error type='modify'>") ||
            !strstr(text, "<bad-request")) {
            smh_dump();
            fail_msg("%s: not a bad-request", bad[i].attrs);
        }
    }
    /* 255 bytes of name pass, 256 do not. */
    char attrs[1024], longest[300];
    memset(longest, 'x', 256);
    longest[256] = '\0';
    snprintf(attrs, sizeof attrs, "filename='%s' size='10'", longest);
    ask(1, "long", attrs, "<bad-request");
    longest[255] = '\0';
    snprintf(attrs, sizeof attrs, "filename='%s' size='10'", longest);
    ask(1, "longest", attrs, "<slot");
    /* Parameters and quoted values are a MIME type's. */
    ask(1, "p", "filename='a' size='10' content-type='text/plain; charset=\"utf-8\"'", "<slot");
    /* Too large: §5's error, the limit given twice; a size past 2^64 is too large too. */
    request(1, "big", "filename='a' size='104857601'");
    EXPECT('S', 1, "id='big'", "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:"
                               "ns:xmpp-stanzas'/><file-too-large xmlns='" UPLOAD_NS
                               "'><max-file-size>104857600</max-file-size></file-too-large>");
    EXPECT('S', 1, "id='big'", "The maximum file size is 104857600 bytes");
    ask(1, "huge", "filename='a' size='99999999999999999999999999'", "<file-too-large");
    ask(1, "max", "filename='a' size='104857600'", "<slot");
    /* Only slots handed out are recorded. */
    assert_int_equal(count_uploads(), 3);
}

static void test_quota(void **state)
{
    smh_start("<upload><secret>" SMH_UPLOAD_SECRET "</secret><quota>1000</quota>"
              "<max_file_size>600</max_file_size></upload>", NULL);
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_clear();
    ask(1, "q1", "filename='a' size='600'", "<slot");
    ask(1, "q2", "filename='a' size='400'", "<slot");
    ask(1, "q3", "filename='a' size='1'", "<error type='wait'><resource-constraint");
    EXPECT('S', 1, "id='q3'", "Quota reached: an account may upload 1000 bytes in 30 days");
    /* Another account has its own quota; the limit of one file still holds. */
    ask(2, "b1", "filename='a' size='600'", "<slot");
    ask(2, "b2", "filename='a' size='601'", "<max-file-size>600</max-file-size>");
    assert_int_equal(count_uploads(), 3);
    /* The counts, by result. */
    buf out = BUF_INIT;
    sm_event ev = {.out = &out};
    sm_fire(smh.core, SM_EV_METRICS, &ev);
    buf_append(&out, "", 1);
    assert_non_null(strstr(buf_data(&out), "jabshard_sm_upload_slots_total{result=\"granted\"} 3"));
    assert_non_null(strstr(buf_data(&out), "jabshard_sm_upload_slots_total{result=\"quota\"} 1"));
    assert_non_null(
        strstr(buf_data(&out), "jabshard_sm_upload_slots_total{result=\"too-large\"} 1"));
    assert_non_null(
        strstr(buf_data(&out), "jabshard_sm_upload_slots_total{result=\"bad-request\"} 0"));
    buf_free(&out);
}

static void test_senders(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    /* An account of example.org at closed.org's service. */
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='get' id='x' to='upload.closed.org'><request xmlns='"
             UPLOAD_NS "' filename='a' size='1'/></iq>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='x'", "<error type='auth'><forbidden");
    /* A remote entity (the component's domain, then a JID at it). */
    const char *from[] = {"muc.example.org", "room@muc.example.org/nick"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(xml, sizeof xml, "<iq type='get' id='r%zu' from='%s' to='" SERVICE "'>"
                 "<request xmlns='" UPLOAD_NS "' filename='a' size='1'/></iq>", i, from[i]);
        smh_component(xml);
    }
    EXPECT('C', 0, "id='r0'", "<forbidden");
    EXPECT('C', 0, "id='r1'", "<forbidden");
    assert_int_equal(count_uploads(), 0);
    /* Anyone may ask what the service is. */
    smh_component("<iq type='get' id='d' from='muc.example.org' to='" SERVICE "'><query "
                  "xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('C', 0, "id='d'", "max-file-size");
}

/* The configuration error of starting with extra (elements under <sm> beside the hosts). */
static void start_error(const char *extra, const char *want)
{
    smh_stop();
    char *path = tmp_write(smh.dir, "u.xml", "<sm>\n<host name='example.org'/>\n%s\n</sm>\n",
                           extra);
    assert_non_null(path);
    config_error err;
    if (sm_config_load(path, sm_builtin_modules, &smh.cfg, &err) == 0) {
        assert_null(sm_new(&smh.cfg, sm_builtin_modules, &smh_transport, NULL, smh_submit, NULL));
        assert_int_equal(config_check(smh.cfg.cfg, &err), -1);
        sm_config_free(&smh.cfg);
        /* What the modules before it asked of storage is never answered: the core is gone. */
        while (smh.qhead < smh.qtail)
            xdb_request_free(smh.queue[smh.qhead++].r);
    }
    free(path);
    if (!strstr(err.text, want))
        fail_msg("starting with %s: '%s', expected '%s'", extra, err.text, want);
}

static void test_options(void **state)
{
    start_error("", "<sm>: the upload service needs <upload><secret> or <upload><secret_file>");
    start_error("<upload><url>" BASE "</url></upload>", "<upload>: the upload service needs");
    start_error("<upload><secret>fifteen bytes!!</secret></upload>",
                "<upload/secret>: the upload secret is 15 bytes: at least 16");
    start_error("<upload><secret>sixteen bytes!!!</secret><secret_file>/x</secret_file></upload>",
                "set <secret> or <secret_file>, not both");
    start_error("<upload><secret_file>/nonexistent/upload</secret_file></upload>",
                "<upload/secret_file>: cannot read the upload secret from /nonexistent/upload");
    start_error("<upload><secret>" SMH_UPLOAD_SECRET "</secret><url>ftp://x/y</url></upload>",
                "<upload/url>: expected an http:// or https:// URL");
    start_error("<upload><secret>" SMH_UPLOAD_SECRET "</secret><url>https://</url></upload>",
                "<upload/url>");
    start_error("<upload><secret>" SMH_UPLOAD_SECRET "</secret><url>https://h/u?x=1</url></upload>",
                "<upload/url>");
    static const char *const bounds[][2] = {
        {"max_file_size", "0"}, {"quota", "0"}, {"expire_after", "59"},
        {"slot_lifetime", "9"}, {"slot_lifetime", "86401"}, {"external", "2"},
        {"max_file_size", "1e9"},
    };
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        char extra[256], want[64];
        snprintf(extra, sizeof extra, "<upload><secret>" SMH_UPLOAD_SECRET "</secret><%s>%s</%s>"
                 "</upload>", bounds[i][0], bounds[i][1], bounds[i][0]);
        snprintf(want, sizeof want, "<upload/%s>", bounds[i][0]);
        start_error(extra, want);
    }
    /* Out of <modules>: no secret needed, no service. */
    smh_start("<modules><module>disco</module><module>ping</module></modules>", NULL);
    smh_online(1, "alice", "a");
    smh_clear();
    request(1, "off", "filename='a' size='1'");
    NONE('S', 1, "<slot");
}

/* The secret from a file (its trailing newline is not part of it), another base URL (its
 * trailing '/' dropped), another domain, a shorter slot lifetime. */
static void test_secret_file_and_domain(void **state)
{
    char *file = tmp_write(smh.dir, "upload.secret", "from a file, 32 bytes long......\n");
    assert_non_null(file);
    char extra[1024];
    snprintf(extra, sizeof extra, "<upload><secret_file>%s</secret_file><url>https://files."
             "example.org/up/</url><slot_lifetime>60</slot_lifetime><external>1</external>"
             "</upload>", file);
    free(file);
    smh_stop();
    char *path = tmp_write(smh.dir, "d.xml", "<sm><host name='example.org'><upload><domain>"
                           "share.example.org</domain></upload></host>%s</sm>", extra);
    config_error err;
    if (sm_config_load(path, sm_builtin_modules, &smh.cfg, &err) != 0)
        fail_msg("%s", err.text);
    free(path);
    smh.core = sm_new(&smh.cfg, sm_builtin_modules, &smh_transport, NULL, smh_submit, NULL);
    assert_non_null(smh.core);
    smh.front = sm_link_up(smh.core, (void *)1, "front", false);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='h' to='example.org'><query xmlns='http://jabber.org/protocol/"
                "disco#items'/></iq>");
    EXPECT('S', 1, "id='h'", "<item jid='share.example.org'");
    NONE('S', 1, "upload.example.org");
    smh_send(1, "<iq type='get' id='f' to='share.example.org'><request xmlns='" UPLOAD_NS
                "' filename='f.txt' size='5' content-type='text/plain'/></iq>");
    char name[512];
    int64_t expires;
    check_slot(1, "f", "from a file, 32 bytes long......", "https://files.example.org/up", 5,
               "text/plain", name, &expires);
    int64_t now = (int64_t)time(NULL);
    assert_true(expires >= now + 60 - 5 && expires <= now + 60 + 5);
}

/* The reader alone, on what no XML parser would let through too. */
static void test_request_reader(void **state)
{
    static const struct {
        const char *filename, *size, *type;
        uint64_t max;
        upload_check want;
        uint64_t size_read;
    } cases[] = {
        {"a.jpg", "1", NULL, 10, UPLOAD_OK, 1},
        {"a.jpg", "10", "", 10, UPLOAD_OK, 10},
        {"a.jpg", "0010", "image/jpeg", 10, UPLOAD_OK, 10},
        {"a.jpg", "11", NULL, 10, UPLOAD_TOO_LARGE, 11},
        {"a.jpg", "18446744073709551615", NULL, UINT64_MAX, UPLOAD_OK, UINT64_MAX},
        {"a.jpg", "18446744073709551616", NULL, UINT64_MAX - 1, UPLOAD_TOO_LARGE, UINT64_MAX},
        {"a.jpg", "99999999999999999999999999999999999999", NULL, 10, UPLOAD_TOO_LARGE, UINT64_MAX},
        {"a.jpg", "1e9", NULL, 10, UPLOAD_BAD_SIZE, 0},
        {"a.jpg", "-1", NULL, 10, UPLOAD_BAD_SIZE, 0},
        {"a.jpg", "-0", NULL, 10, UPLOAD_BAD_SIZE, 0},
        {"a.jpg", "0", NULL, 10, UPLOAD_BAD_SIZE, 0},
        {"a.jpg", "", NULL, 10, UPLOAD_BAD_SIZE, 0},
        {"a.jpg", NULL, NULL, 10, UPLOAD_BAD_SIZE, 0},
        {"a.jpg", "1.5", NULL, 10, UPLOAD_BAD_SIZE, 0},
        {"a.jpg", "\xd9\xa1", NULL, 10, UPLOAD_BAD_SIZE, 0},       /* an Arabic-Indic one */
        {NULL, "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {"", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {".", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {"..", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {"...", "1", NULL, 10, UPLOAD_OK, 1},
        {".hidden", "1", NULL, 10, UPLOAD_OK, 1},
        {"a\\b", "1", NULL, 10, UPLOAD_OK, 1},
        {"a/b", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {"a\x01" "b", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {"a\x1f", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {"a\r\n", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},
        {"\xc2\x9b" "31m", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},  /* C1 CSI */
        {"\xc2\xa0", "1", NULL, 10, UPLOAD_OK, 1},                  /* no-break space */
        {"\xff\xfe", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},        /* not UTF-8 */
        {"\xc0\xaf", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},        /* an overlong '/' */
        {"\xed\xa0\x80", "1", NULL, 10, UPLOAD_BAD_FILENAME, 0},    /* a surrogate */
        {"\xf0\x9f\x98\x80.png", "1", NULL, 10, UPLOAD_OK, 1},
        {"a", "1", "image/svg+xml", 10, UPLOAD_OK, 1},
        {"a", "1", "application/vnd.oasis.opendocument.text", 10, UPLOAD_OK, 1},
        {"a", "1", "text/plain;charset=utf-8", 10, UPLOAD_OK, 1},
        {"a", "1", "text/plain ; charset=utf-8 ; format=flowed", 10, UPLOAD_OK, 1},
        {"a", "1", "text/plain; x=\"a \\\" b\"", 10, UPLOAD_OK, 1},
        {"a", "1", "text/plain; x=\"open", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/plain; x=\"\xc3\xa9\"", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "/plain", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/plain/x", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "-text/plain", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/plain\r\nX: y", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/pl\xc3\xa4in", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/plain; =x", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/plain; a=", 10, UPLOAD_BAD_TYPE, 1},
        {"a", "1", "text/plain;", 10, UPLOAD_BAD_TYPE, 1},
        /* The filename is checked first, then the size, then the type, then the limit. */
        {"a/b", "x", "y", 10, UPLOAD_BAD_FILENAME, 0},
        {"a", "x", "y", 10, UPLOAD_BAD_SIZE, 0},
        {"a", "11", "y", 10, UPLOAD_BAD_TYPE, 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        upload_request r;
        upload_check got = upload_request_read(cases[i].filename, cases[i].size, cases[i].type,
                                               cases[i].max, &r);
        if (got != cases[i].want || r.size != cases[i].size_read)
            fail_msg("case %zu: got %d size %llu, expected %d size %llu", i, (int)got,
                     (unsigned long long)r.size, (int)cases[i].want,
                     (unsigned long long)cases[i].size_read);
        assert_non_null(r.content_type);
        assert_true(got == UPLOAD_OK ? !*upload_check_text(got) : *upload_check_text(got));
    }
    /* Lengths: 255 bytes of name and of type pass, one more does not; a type's names are at most
     * 127 bytes each. */
    char name[300], type[300];
    memset(name, 'n', sizeof name);
    name[255] = '\0';
    upload_request r;
    assert_int_equal(upload_request_read(name, "1", NULL, 10, &r), UPLOAD_OK);
    name[255] = 'n';
    name[256] = '\0';
    assert_int_equal(upload_request_read(name, "1", NULL, 10, &r), UPLOAD_BAD_FILENAME);
    memset(type, 'a', sizeof type);
    memcpy(type + 127, "/", 1);
    type[255] = '\0';
    assert_int_equal(upload_request_read("a", "1", type, 10, &r), UPLOAD_OK);
    type[255] = 'a';
    type[256] = '\0';
    assert_int_equal(upload_request_read("a", "1", type, 10, &r), UPLOAD_BAD_TYPE);
    memcpy(type + 127, "a", 1);
    memcpy(type + 128, "/", 1);
    type[200] = '\0';
    assert_int_equal(upload_request_read("a", "1", type, 10, &r), UPLOAD_BAD_TYPE);
}

/* The URLs alone: what is escaped where, and the signature over the raw name. */
static void test_slot_urls(void **state)
{
    buf put = BUF_INIT, get = BUF_INIT;
    upload_request req = {.filename = "r\xc3\xa9sum\xc3\xa9 & co?.pdf", .size = 42,
                          .content_type = "application/pdf; a=\"b c\""};
    const char *slot = "0123456789abcdef0123456789abcdef";
    upload_slot_urls(&put, &get, "http://h:1/u", slot, &req, 1700000000, "k", 1);
    buf_append(&put, "", 1);
    buf_append(&get, "", 1);
    assert_string_equal(buf_data(&get), "http://h:1/u/0123456789abcdef0123456789abcdef/"
                                        "r%C3%A9sum%C3%A9%20%26%20co%3F.pdf");
    char sig[UPLOAD_SIG_HEX + 1], want[1024];
    upload_sign("k", 1, "0123456789abcdef0123456789abcdef/r\xc3\xa9sum\xc3\xa9 & co?.pdf", 42,
                "application/pdf; a=\"b c\"", 1700000000, sig);
    snprintf(want, sizeof want, "%s?e=1700000000&s=42&t=application%%2Fpdf%%3B%%20a%%3D%%22b%%20c"
             "%%22&sig=%s", buf_data(&get), sig);
    assert_string_equal(buf_data(&put), want);
    buf_free(&put);
    buf_free(&get);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disco, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_slot, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_errors, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_quota, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_senders, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_options, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_and_domain, smh_setup, smh_teardown),
        cmocka_unit_test(test_request_reader),
        cmocka_unit_test(test_slot_urls),
    };
    return cmocka_run_group_tests_name("sm_upload", tests, NULL, NULL);
}
