/* tests/support/sm_harness.c — the in-memory session manager of the SM's unit tests
 * (sm_harness.h): the recording transport, the synchronous storage queue, starting and stopping
 * the core, and the helpers the tests drive it with. */
#include "tests/support/sm_harness.h"

#include "tests/support/tmp.h"

sm_harness smh;

static const sm_module *modules[64];

static void record(char kind, uint64_t sid, uint8_t status, const char *text, size_t len)
{
    assert_true(smh.nrecs < SMH_RECORDS);
    smh.recs[smh.nrecs++] = (smh_record){kind, sid, status, text ? strndup(text, len) : NULL, len};
}

void smh_clear(void)
{
    for (int i = 0; i < smh.nrecs; i++)
        free(smh.recs[i].text);
    smh.nrecs = 0;
}

static void t_stanza(void *ctx, void *link, uint64_t sid, const char *xml, size_t len)
{
    record('S', sid, 0, xml, len);
}
static void t_auth(void *ctx, void *link, uint64_t sid, uint8_t status, const xdb_credentials *c)
{
    record('A', sid, status, NULL, 0);
}
static void t_bound(void *ctx, void *link, uint64_t sid, uint8_t status, const char *full)
{
    record('B', sid, status, full, full ? strlen(full) : 0);
}
static void t_end(void *ctx, void *link, uint64_t sid, uint8_t reason, const char *text)
{
    record('E', sid, reason, text, strlen(text));
}
static void t_component(void *ctx, void *link, const char *xml, size_t len)
{
    record('C', 0, 0, xml, len);
}
/* A STATE record is kept as its bytes, its length in status. An empty one may come as NULL. */
static void t_state(void *ctx, void *link, uint64_t sid, const uint8_t *state, size_t len)
{
    assert_true(smh.nrecs < SMH_RECORDS);
    char *copy = malloc(len + 1);
    if (len)
        memcpy(copy, state, len);
    copy[len] = 0;
    smh.recs[smh.nrecs++] = (smh_record){'T', sid, (uint8_t)len, copy, len};
}

/* A module's message: its text is the module's name, a NUL and the body (len bytes). */
static void t_module(void *ctx, void *link, uint64_t sid, const char *name, const uint8_t *body,
                     size_t len)
{
    assert_true(smh.nrecs < SMH_RECORDS);
    size_t nl = strlen(name);
    char *copy = malloc(nl + 1 + len + 1);
    memcpy(copy, name, nl + 1);
    if (len)
        memcpy(copy + nl + 1, body, len);
    copy[nl + 1 + len] = 0;
    smh.recs[smh.nrecs++] = (smh_record){'M', sid, 0, copy, len};
}

const sm_transport smh_transport = {t_stanza, t_auth, t_bound, t_end, t_component, t_state,
                                    t_module};

void smh_submit(void *ctx, xdb_request *r, xdb_callback cb, void *cbctx)
{
    xdb_run(smh.db, r);
    assert_true(smh.qtail < SMH_PENDING);
    smh.queue[smh.qtail++] = (smh_pending){r, cb, cbctx};
}

void smh_drain(void)
{
    while (smh.qhead < smh.qtail) {
        smh_pending p = smh.queue[smh.qhead++];
        if (p.cb)
            p.cb(p.r, p.ctx);
        xdb_request_free(p.r);
    }
}

void smh_adduser(const char *host, const char *user)
{
    xdb_request *r = xdb_request_new(XDB_USER_CREATE, host, user);
    xdb_request_set_password(r, "pw");
    assert_int_equal(xdb_run(smh.db, r), XDB_OK);
    xdb_request_free(r);
}

void smh_stop(void)
{
    if (!smh.core)
        return;
    smh_drain();
    sm_free(smh.core);
    smh.core = NULL;
    sm_config_free(&smh.cfg);
}

void smh_start(const char *extra, const sm_module *const *extra_modules)
{
    smh_stop();
    size_t n = 0;
    for (size_t i = 0; sm_builtin_modules[i]; i++)
        modules[n++] = sm_builtin_modules[i];
    for (size_t i = 0; extra_modules && extra_modules[i]; i++)
        modules[n++] = extra_modules[i];
    modules[n] = NULL;
    /* The upload service needs a secret; a test of <upload> gives its own. */
    const char *upload = strstr(extra, "<upload>") || strstr(extra, "<upload/>") ? ""
                         : SMH_UPLOAD;
    char *path = tmp_write(smh.dir, "sm.xml",
                           "<sm><host name='example.org'><register/></host><host name='closed.org'/>"
                           "<offline_quota>%d</offline_quota>%s%s</sm>\n",
                           smh.offline_quota ? smh.offline_quota : 10, upload, extra);
    assert_non_null(path);
    config_error err;
    if (sm_config_load(path, modules, &smh.cfg, &err) != 0)
        fail_msg("%s", err.text);
    free(path);
    smh.core = sm_new(&smh.cfg, modules, &smh_transport, NULL, smh_submit, NULL);
    assert_non_null(smh.core);
    smh.front = sm_link_up(smh.core, (void *)1, "front", false);
    smh.comp = sm_link_up(smh.core, (void *)2, "muc.example.org", true);
}

int smh_setup(void **state)
{
    smh.dir = tmp_dir("sm_harness");
    assert_non_null(smh.dir);
    char *path = tmp_path(smh.dir, "sm.db");
    db_settings s = {.driver = "sqlite", .path = path};
    char err[256];
    smh.db = db_open(&s, err, sizeof(err));
    free(path);
    assert_non_null(smh.db);
    assert_int_equal(xdb_migrate(smh.db, err, sizeof(err)), 0);
    smh_adduser("example.org", "alice");
    smh_adduser("example.org", "bob");
    smh_adduser("example.org", "carol");
    smh_start("", NULL);
    return 0;
}

int smh_teardown(void **state)
{
    smh_stop();
    smh_clear();
    db_close(smh.db);
    smh.db = NULL;
    tmp_dir_remove(smh.dir);
    smh.dir = NULL;
    smh.qhead = smh.qtail = 0;
    return 0;
}

int smh_find(char kind, uint64_t sid, const char *a, const char *b)
{
    for (int i = 0; i < smh.nrecs; i++) {
        const smh_record *r = &smh.recs[i];
        if (r->kind == kind && (!sid || r->sid == sid) && (!a || (r->text && strstr(r->text, a))) &&
            (!b || (r->text && strstr(r->text, b))))
            return i;
    }
    return -1;
}

int smh_count(char kind, uint64_t sid, const char *a)
{
    int n = 0;
    for (int i = 0; i < smh.nrecs; i++) {
        const smh_record *r = &smh.recs[i];
        if (r->kind == kind && (!sid || r->sid == sid) && (!a || (r->text && strstr(r->text, a))))
            n++;
    }
    return n;
}

void smh_dump(void)
{
    for (int i = 0; i < smh.nrecs; i++)
        fprintf(stderr, "  %c sid=%llu st=%u %s\n", smh.recs[i].kind,
                (unsigned long long)smh.recs[i].sid, smh.recs[i].status,
                smh.recs[i].text ? smh.recs[i].text : "");
}

void smh_send(uint64_t sid, const char *xml)
{
    sm_session_stanza(smh.core, smh.front, sid, xml, strlen(xml));
    smh_drain();
}

void smh_component(const char *xml)
{
    smh_xml_link(smh.comp, xml);
}

void smh_xml_link(sm_link *l, const char *xml)
{
    sm_stanza *st = sm_parse(smh.core, xml, strlen(xml));
    assert_non_null(st);
    /* sm_parse puts it in jabber:client; a component's parser would not. */
    st->node->ns = SM_NS_COMPONENT;
    sm_component_stanza(smh.core, l, st->node, st->arena);
    st->arena = NULL;
    sm_stanza_free(st);
    smh_drain();
}

void smh_smacks(uint64_t sid, const smacks_msg *m)
{
    buf b = BUF_INIT;
    smacks_msg_put(&b, m);
    sm_module_message(smh.core, smh.front, sid, SMACKS_MODULE, strlen(SMACKS_MODULE),
                      (const uint8_t *)buf_data(&b), buf_len(&b));
    buf_free(&b);
    smh_drain();
}

void smh_bind(uint64_t sid, const char *user, const char *res)
{
    smh_clear();
    sm_bind(smh.core, smh.front, sid, "example.org", user, res, 0);
    smh_drain();
    int i = smh_find('B', sid, NULL, NULL);
    assert_true(i >= 0);
    assert_int_equal(smh.recs[i].status, SMPROTO_BOUND_OK);
}

void smh_online(uint64_t sid, const char *user, const char *res)
{
    smh_bind(sid, user, res);
    smh_send(sid, "<presence/>");
}

void smh_befriend(void)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_send(1, "<presence to='bob@example.org' type='subscribe'/>");
    smh_send(2, "<presence to='alice@example.org' type='subscribed'/>");
    smh_send(2, "<presence to='alice@example.org' type='subscribe'/>");
    smh_send(1, "<presence to='bob@example.org' type='subscribed'/>");
    smh_clear();
}
