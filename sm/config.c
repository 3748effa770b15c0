/* sm/config.c — reading etc/sm.xml (see config.h). */
#include "sm/config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"
#include "sm/module.h"

/* The core's own elements; the modules add theirs (sm_module.options). */
static const char *const core_vocabulary[] = {
    "service", "service/accept", "service/accept/ip", "service/accept/port",
    "service/accept/secret", "host", "storage/driver", "storage/path", "storage/host",
    "storage/port", "storage/user", "storage/password", "storage/database", "storage/workers",
    "limits/sessions", "limits/roster_items", "limits/pending", "limits/resync_wait", "modules",
    "modules/module",
    "admin/socket", "metrics/ip", "metrics/port", "log/target", "log/path", "log/level",
    "partitions", "partitions/peer", NULL,
};

/* The core's vocabulary and every module's options, NULL-terminated (malloc'd). */
static const char **vocabulary(const sm_module *const *modules)
{
    size_t n = 0;
    for (size_t i = 0; core_vocabulary[i]; i++)
        n++;
    for (size_t m = 0; modules && modules[m]; m++) {
        for (size_t i = 0; modules[m]->options && modules[m]->options[i]; i++)
            n++;
        for (size_t i = 0; modules[m]->int_options && modules[m]->int_options[i].path; i++)
            n++;
    }
    const char **v = mem_array(n + 1, sizeof(*v));
    n = 0;
    for (size_t i = 0; core_vocabulary[i]; i++)
        v[n++] = core_vocabulary[i];
    for (size_t m = 0; modules && modules[m]; m++) {
        for (size_t i = 0; modules[m]->options && modules[m]->options[i]; i++)
            v[n++] = modules[m]->options[i];
        for (size_t i = 0; modules[m]->int_options && modules[m]->int_options[i].path; i++)
            v[n++] = modules[m]->int_options[i].path;
    }
    v[n] = NULL;
    return v;
}

/* <modules><module>NAME</module>...</modules>: each a module of the table, once. */
static void read_modules(sm_config *sc, config *cfg, const sm_module *const *modules)
{
    if (!config_first(cfg, NULL, "modules"))
        return;
    size_t n = 0;
    for (xml_node *el = config_first(cfg, NULL, "modules/module"); el; el = config_next(el))
        n++;
    sc->modules = mem_array(n + 1, sizeof(char *));
    n = 0;
    for (xml_node *el = config_first(cfg, NULL, "modules/module"); el; el = config_next(el)) {
        const char *name = config_str(cfg, el, NULL, "");
        bool known = false;
        for (size_t m = 0; modules && modules[m] && !known; m++)
            known = strcmp(modules[m]->name, name) == 0;
        bool twice = false;
        for (size_t i = 0; i < n && !twice; i++)
            twice = strcmp(sc->modules[i], name) == 0;
        if (!known)
            config_fail(cfg, el, "no module is called '%s'", name);
        else if (twice)
            config_fail(cfg, el, "module '%s' is listed twice", name);
        else
            sc->modules[n++] = name;
    }
}

/* The modules' integer options are checked here, so that a bad value is an error of the load
 * (the modules read them again when they start). */
static void check_module_ints(config *cfg, const sm_module *const *modules)
{
    for (size_t m = 0; modules && modules[m]; m++)
        for (const sm_int_option *o = modules[m]->int_options; o && o->path; o++)
            config_int(cfg, NULL, o->path, o->def, o->min, o->max);
}

static void read_services(sm_config *sc, config *cfg)
{
    for (xml_node *n = config_first(cfg, NULL, "service"); n; n = config_next(n))
        sc->nservices++;
    sc->services = mem_array((size_t)sc->nservices + 1, sizeof(sm_service));
    int i = 0;
    for (xml_node *n = config_first(cfg, NULL, "service"); n; n = config_next(n), i++) {
        sm_service *s = &sc->services[i];
        if (config_require(cfg, n, "@id"))
            s->id = config_str(cfg, n, "@id", NULL);
        config_require(cfg, n, "accept/port");
        config_require(cfg, n, "accept/secret");
        s->ip = config_str(cfg, n, "accept/ip", NULL);
        s->port = config_port(cfg, n, "accept/port", 0);
        s->secret = config_str(cfg, n, "accept/secret", NULL);
        /* No default: a link that may speak for every user (a front) must never be one that
         * was meant to serve a single domain (a component), so the file says which. */
        static const char *const roles[] = {"front", "component", "s2s", NULL};
        static const sm_role role_of[] = {SM_ROLE_FRONT, SM_ROLE_COMPONENT, SM_ROLE_S2S};
        if (config_require(cfg, n, "@role"))
            s->role = role_of[config_enum(cfg, n, "@role", roles, 0)];
        for (int j = 0; j < i; j++)
            if (s->id && sc->services[j].id && strcmp(s->id, sc->services[j].id) == 0)
                config_fail(cfg, n, "service id '%s' is configured twice", s->id);
    }
}

static void read_hosts(sm_config *sc, config *cfg)
{
    for (xml_node *n = config_first(cfg, NULL, "host"); n; n = config_next(n))
        sc->nhosts++;
    if (!sc->nhosts)
        config_fail(cfg, NULL, "missing required element <host name='...'>: no domain is served");
    sc->hosts = mem_array((size_t)sc->nhosts + 1, sizeof(sm_host));
    int i = 0;
    for (xml_node *n = config_first(cfg, NULL, "host"); n; n = config_next(n), i++) {
        if (config_require(cfg, n, "@name"))
            sc->hosts[i].name = config_str(cfg, n, "@name", NULL);
        sc->hosts[i].el = n;
    }
}

/* A component's domain is its own: one that is also a served host would let the component speak
 * as every user of that host. */
static void check_components(sm_config *sc, config *cfg)
{
    xml_node *n = config_first(cfg, NULL, "service");
    for (int i = 0; i < sc->nservices; i++, n = config_next(n)) {
        const sm_service *s = &sc->services[i];
        if (s->role == SM_ROLE_COMPONENT && s->id && sm_config_host(sc, s->id))
            config_fail(cfg, n, "component '%s' has the name of a served host", s->id);
    }
}

/* <partitions index='I' id='ID' [ip='IP'] [port='P'] [key='HEX']><peer index='J' id='ID'
 * [host='H' port='P'] secret='S'/>...</partitions>: every index from 0 to the number of SMs - 1
 * once; a lower peer is connected to (host, port), a higher one connects (our port). */
static void read_partitions(sm_config *sc, config *cfg)
{
    sm_partitions *p = &sc->partitions;
    xml_node *el = config_first(cfg, NULL, "partitions");
    if (!el)
        return;
    for (xml_node *n = config_first(cfg, el, "peer"); n; n = config_next(n))
        p->npeers++;
    if (!p->npeers) {
        config_fail(cfg, el, "no <peer>: partitions need at least two SMs");
        return;
    }
    if (p->npeers >= PARTITION_MAX_SMS) {
        config_fail(cfg, el, "%d peers: at most %d SMs share the partitions", p->npeers,
                    PARTITION_MAX_SMS);
        return;
    }
    p->count = p->npeers + 1;
    config_require(cfg, el, "@index");
    if (config_require(cfg, el, "@id"))
        p->id = config_str(cfg, el, "@id", NULL);
    p->index = (int)config_int(cfg, el, "@index", 0, 0, p->count - 1);
    p->ip = config_str(cfg, el, "@ip", NULL);
    p->port = config_port(cfg, el, "@port", 0);
    p->key = partition_default_key;
    const char *key = config_str(cfg, el, "@key", NULL);
    if (key && !partition_key_parse(key, &p->key))
        config_fail(cfg, el, "attribute 'key': expected 32 hex digits");
    p->peers = mem_array((size_t)p->npeers, sizeof(sm_peer));
    bool seen[PARTITION_MAX_SMS] = {false};
    seen[p->index] = true;
    int i = 0;
    for (xml_node *n = config_first(cfg, el, "peer"); n; n = config_next(n), i++) {
        sm_peer *q = &p->peers[i];
        config_require(cfg, n, "@index");
        if (config_require(cfg, n, "@id"))
            q->id = config_str(cfg, n, "@id", NULL);
        if (config_require(cfg, n, "@secret"))
            q->secret = config_str(cfg, n, "@secret", NULL);
        q->index = (int)config_int(cfg, n, "@index", 0, 0, p->count - 1);
        q->host = config_str(cfg, n, "@host", NULL);
        q->port = config_port(cfg, n, "@port", 0);
        if (seen[q->index])
            config_fail(cfg, n, "index %d is taken by another SM", q->index);
        seen[q->index] = true;
        if (q->index < p->index && (!q->host || !*q->host || !q->port))
            config_fail(cfg, n, "peer '%s' has a lower index: this SM connects to it, and needs "
                        "its host='...' and port='...'", q->id ? q->id : "");
        if (q->index > p->index && !p->port)
            config_fail(cfg, el, "peer '%s' has a higher index: it connects here, and <partitions> "
                        "needs port='...'", q->id ? q->id : "");
        bool dup = q->id && p->id && strcmp(q->id, p->id) == 0;
        for (int j = 0; q->id && j < i; j++)
            dup |= p->peers[j].id && strcmp(p->peers[j].id, q->id) == 0;
        for (int j = 0; q->id && j < sc->nservices; j++)
            dup |= sc->services[j].id && strcmp(sc->services[j].id, q->id) == 0;
        if (dup)
            config_fail(cfg, n, "peer id '%s' is another SM's or a <service>'s", q->id);
    }
}

void sm_limits_default(sm_limits *l)
{
    *l = (sm_limits){.sessions = 10, .roster_items = 2000, .pending = 200, .resync_wait = 5};
}

static void read_limits(sm_config *sc, config *cfg)
{
    sm_limits *l = &sc->limits;
    sm_limits_default(l);
    l->sessions = (int)config_int(cfg, NULL, "limits/sessions", l->sessions, 1, 100000);
    l->roster_items = (int)config_int(cfg, NULL, "limits/roster_items", l->roster_items, 1, 1000000);
    l->pending = (int)config_int(cfg, NULL, "limits/pending", l->pending, 1, 1000000);
    l->resync_wait = (int)config_int(cfg, NULL, "limits/resync_wait", l->resync_wait, 0, 600);
}

static void read_storage(sm_config *sc, config *cfg)
{
    static const char *const drivers[] = {"sqlite", "pgsql", "mariadb", NULL};
    db_settings *db = &sc->storage.db;
    int driver = config_enum(cfg, NULL, "storage/driver", drivers, 0);
    db->driver = drivers[driver];
    db->path = config_str(cfg, NULL, "storage/path", "./jabshard.db");
    db->host = config_str(cfg, NULL, "storage/host", "127.0.0.1");
    db->port = config_port(cfg, NULL, "storage/port", driver == 1 ? 5432 : 3306);
    db->user = config_str(cfg, NULL, "storage/user", "jabshard");
    db->password = config_str(cfg, NULL, "storage/password", NULL);
    db->database = config_str(cfg, NULL, "storage/database", "jabshard");
    sc->storage.workers = (int)config_int(cfg, NULL, "storage/workers", 0, 1, 64);
}

static void read_admin(sm_config *sc, config *cfg)
{
    const char *path = config_str(cfg, NULL, "admin/socket", NULL);
    if (path) {
        if (!*path)
            config_fail(cfg, NULL, "<admin><socket> is empty");
        sc->admin_socket = mem_strdup(path);
        return;
    }
    /* Beside the database: the directory the SM runs in is where its state is. */
    const char *db = strcmp(sc->storage.db.driver, "sqlite") == 0 ? sc->storage.db.path : NULL;
    const char *slash = db ? strrchr(db, '/') : NULL;
    buf b = BUF_INIT;
    if (slash)
        buf_appendf(&b, "%.*s/jabshard-sm.sock", (int)(slash - db), db);
    else
        buf_appendf(&b, "./jabshard-sm.sock");
    buf_append(&b, "", 1);
    sc->admin_socket = mem_strdup(buf_data(&b));
    buf_free(&b);
}

/* <metrics>: the Prometheus endpoint (sm/metrics.c); off without the element. */
static void read_metrics(sm_config *sc, config *cfg)
{
    if (!config_first(cfg, NULL, "metrics"))
        return;
    sc->metrics_ip = config_str(cfg, NULL, "metrics/ip", "127.0.0.1");
    sc->metrics_port = config_port(cfg, NULL, "metrics/port", 9110);
}

int sm_config_load(const char *path, const sm_module *const *modules, sm_config *out,
                   config_error *err)
{
    memset(out, 0, sizeof(*out));
    if (config_load(path, &out->cfg, err) != 0)
        return -1;
    config *cfg = out->cfg;
    const char **known = vocabulary(modules);
    config_declare(cfg, "sm", known);
    free(known);
    read_services(out, cfg);
    read_hosts(out, cfg);
    check_components(out, cfg);
    read_storage(out, cfg);
    read_limits(out, cfg);
    read_modules(out, cfg, modules);
    check_module_ints(cfg, modules);
    read_admin(out, cfg);
    read_metrics(out, cfg);
    read_partitions(out, cfg);
    config_log(cfg, &out->log_target, &out->log_path, &out->log_level);
    if (config_check(cfg, err) != 0) {
        sm_config_free(out);
        return -1;
    }
    return 0;
}

void sm_config_free(sm_config *sc)
{
    free(sc->modules);
    free(sc->services);
    free(sc->hosts);
    free(sc->partitions.peers);
    free(sc->admin_socket);
    config_free(sc->cfg);
    memset(sc, 0, sizeof(*sc));
}

const sm_host *sm_config_host(const sm_config *sc, const char *domain)
{
    for (int i = 0; i < sc->nhosts; i++)
        if (sc->hosts[i].name && strcasecmp(sc->hosts[i].name, domain) == 0)
            return &sc->hosts[i];
    return NULL;
}
