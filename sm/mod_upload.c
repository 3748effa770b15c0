/* sm/mod_upload.c — HTTP File Upload (XEP-0363; docs/upload.md): an upload service per served
 * host (upload.HOST, or <host><upload><domain>), listed in the host's disco#items, whose stanzas
 * the router hands over (sm_serve_domain). It hands the host's own accounts slots: a PUT URL
 * signed for the file's name, size and type until it expires (core/upload_sign.h), and the GET
 * URL it will be at. The files themselves never pass through the SM: the fronts' HTTP listener
 * (or an external store, <upload><external>) checks the signature, keeps them in a directory all
 * front boxes share and deletes them after <expire_after>. Each slot is recorded in storage
 * (XDB_UPLOAD_RESERVE), which counts an account's bytes within that time against <quota>.
 * Reading a request and making the URLs is sm/upload_request.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/random.h"
#include "sm/disco.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "sm/upload.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_XDATA "jabber:x:data"
#define UPLOAD_NAME "HTTP File Upload"
#define UPLOAD_URL_DEFAULT "https://localhost:5281/upload"
#define UPLOAD_URL_MAX 1024
#define UPLOAD_SECRET_MIN 16    /* bytes: a guessable secret would sign for anyone */
#define UPLOAD_SECRET_MAX 4096

static const sm_int_option upload_options[] = {
    {"upload/max_file_size", 104857600, 1, 1LL << 50},
    {"upload/quota", 1073741824, 1, 1LL << 60},
    {"upload/expire_after", 2592000, 60, 315360000},
    {"upload/slot_lifetime", 300, 10, 86400},
    {"upload/external", 0, 0, 1},
    {NULL, 0, 0, 0},
};

static const char *const upload_paths[] = {"upload/url", "upload/secret", "upload/secret_file",
                                           "host/upload/domain", NULL};

/* Why a request got no slot: the metrics' reason label. */
typedef enum {
    REFUSED_FORBIDDEN,      /* not an account of the service's host */
    REFUSED_BAD_REQUEST,    /* upload_request_read refused it */
    REFUSED_TOO_LARGE,
    REFUSED_QUOTA,
    REFUSED_ERROR,          /* storage failed */
    REFUSALS
} refusal;

static const char *const refusal_names[REFUSALS] = {"forbidden", "bad-request", "too-large",
                                                    "quota", "error"};

typedef struct upload_service {
    char *domain;           /* upload.HOST */
    char *host;             /* whose accounts it serves */
} upload_service;

typedef struct upload_data {
    upload_service *services;
    size_t nservices;
    char *url;              /* the stores' base, no trailing '/' */
    unsigned char *secret;
    size_t secret_len;
    uint64_t granted, refused[REFUSALS];
} upload_data;

static upload_data *data_of(sm *s) { return sm_module_data(s, &mod_upload); }

static long long option(sm *s, const char *path) { return sm_module_int(s, &mod_upload, path); }

/* ---- a slot ---- */

/* A request waiting for storage to record its slot. */
typedef struct pending_slot {
    sm *s;
    sm_stanza *st;
    upload_request req;
    char slot[UPLOAD_SLOT_HEX + 1];
} pending_slot;

static void refuse(sm *s, sm_stanza *st, refusal why, const char *type, const char *condition,
                   const char *text)
{
    data_of(s)->refused[why]++;
    sm_bounce_text(s, st, type, condition, text);
}

/* XEP-0363 §5: <not-acceptable/> with <file-too-large><max-file-size>. */
static void refuse_too_large(sm *s, sm_stanza *st)
{
    data_of(s)->refused[REFUSED_TOO_LARGE]++;
    if (!sm_stanza_error(st, "modify", "not-acceptable", UPLOAD_NS, "file-too-large")) {
        sm_stanza_free(st);
        return;
    }
    char max[24], text[96];
    snprintf(max, sizeof max, "%lld", option(s, "upload/max_file_size"));
    snprintf(text, sizeof text, "File too large. The maximum file size is %s bytes", max);
    xml_node *err = st->node->last_child;
    xml_node *m = xml_element_new(st->arena, err->last_child, UPLOAD_NS, "max-file-size");
    xml_text_new(st->arena, m, max, strlen(max));
    xml_node *t = xml_element_new(st->arena, err, SM_NS_STANZAS, "text");
    xml_attr_set(st->arena, t, XML_NS_XML, "lang", "en");
    xml_text_new(st->arena, t, text, strlen(text));
    sm_route(s, st);
}

static void reserved(xdb_request *r, void *ctx)
{
    pending_slot *p = ctx;
    sm *s = p->s;
    upload_data *d = data_of(s);
    if (r->status == XDB_QUOTA) {
        char text[160];
        snprintf(text, sizeof text, "Quota reached: an account may upload %lld bytes in %lld days",
                 option(s, "upload/quota"), option(s, "upload/expire_after") / 86400);
        refuse(s, p->st, REFUSED_QUOTA, "wait", "resource-constraint", text);
    } else if (r->status == XDB_NOT_FOUND) {
        refuse(s, p->st, REFUSED_FORBIDDEN, "auth", "forbidden", "no such account");
    } else if (r->status != XDB_OK) {
        log_warn("sm: upload: recording a slot of %s@%s failed: %s", r->user, r->host,
                 r->error[0] ? r->error : xdb_status_name(r->status));
        refuse(s, p->st, REFUSED_ERROR, "wait", "internal-server-error", NULL);
    } else {
        int64_t expires = sm_wall_ms() / 1000 + option(s, "upload/slot_lifetime");
        buf put = BUF_INIT, get = BUF_INIT;
        upload_slot_urls(&put, &get, d->url, p->slot, &p->req, expires, d->secret, d->secret_len);
        buf_append(&put, "", 1);
        buf_append(&get, "", 1);
        xml_arena *a = xml_arena_new(1024);
        xml_node *slot = xml_element_new(a, NULL, UPLOAD_NS, "slot");
        xml_attr_set(a, xml_element_new(a, slot, UPLOAD_NS, "put"), NULL, "url", buf_data(&put));
        xml_attr_set(a, xml_element_new(a, slot, UPLOAD_NS, "get"), NULL, "url", buf_data(&get));
        log_info("sm: upload: slot %s for %s@%s: %" PRIu64 " bytes", p->slot, r->user, r->host,
                 p->req.size);
        d->granted++;
        sm_iq_result(s, p->st, slot);
        xml_arena_free(a);
        buf_free(&put);
        buf_free(&get);
    }
    free(p);
}

/* A slot request from an account of svc's host: read, then recorded (and counted) in storage. */
static void request_slot(sm *s, const upload_service *svc, sm_stanza *st, const xml_node *q)
{
    size_t nlen, dlen;
    const char *node = jid_node(&st->from, &nlen);
    const char *dom = jid_domain(&st->from, &dlen);
    if (!node || strlen(svc->host) != dlen || memcmp(svc->host, dom, dlen) != 0) {
        refuse(s, st, REFUSED_FORBIDDEN, "auth", "forbidden",
               "only accounts of this server may upload here");
        return;
    }
    upload_request req;
    upload_check check = upload_request_read(xml_attr_get(q, "filename"), xml_attr_get(q, "size"),
                                             xml_attr_get(q, "content-type"),
                                             (uint64_t)option(s, "upload/max_file_size"), &req);
    if (check == UPLOAD_TOO_LARGE) {
        refuse_too_large(s, st);
        return;
    }
    if (check != UPLOAD_OK) {
        refuse(s, st, REFUSED_BAD_REQUEST, "modify", "bad-request", upload_check_text(check));
        return;
    }
    pending_slot *p = mem_zalloc(sizeof *p);
    p->s = s;
    p->st = sm_iq_keep(st);
    p->req = req;       /* its strings are in the stanza's tree, which p keeps */
    unsigned char id[UPLOAD_SLOT_HEX / 2];
    random_bytes(id, sizeof id);
    for (size_t i = 0; i < sizeof id; i++)
        snprintf(p->slot + 2 * i, 3, "%02x", id[i]);
    xdb_request *r = sm_user_request(XDB_UPLOAD_RESERVE, &st->from);
    xdb_request_set_key(r, p->slot);
    r->upload_size = (int64_t)req.size;
    r->upload_since = sm_wall_ms() - option(s, "upload/expire_after") * 1000;
    r->quota = option(s, "upload/quota");
    sm_submit(s, r, reserved, p);
}

/* ---- the service ---- */

static void disco_info(sm *s, sm_stanza *st, const xml_node *q)
{
    if (xml_attr_get(q, "node")) {
        sm_bounce(s, st, "cancel", "item-not-found");
        return;
    }
    char max[24];
    snprintf(max, sizeof max, "%lld", option(s, "upload/max_file_size"));
    xml_arena *a = xml_arena_new(1024);
    xml_node *res = xml_element_new(a, NULL, NS_DISCO_INFO, "query");
    xml_node *id = xml_element_new(a, res, NS_DISCO_INFO, "identity");
    xml_attr_set(a, id, NULL, "category", "store");
    xml_attr_set(a, id, NULL, "type", "file");
    xml_attr_set(a, id, NULL, "name", UPLOAD_NAME);
    disco_feature(a, res, NS_DISCO_INFO);
    disco_feature(a, res, UPLOAD_NS);
    /* XEP-0128: the largest file, so that clients need not ask for a slot to learn it. */
    xml_node *x = xml_element_new(a, res, NS_XDATA, "x");
    xml_attr_set(a, x, NULL, "type", "result");
    const char *fields[][3] = {{"FORM_TYPE", "hidden", UPLOAD_NS}, {"max-file-size", NULL, max}};
    for (size_t i = 0; i < 2; i++) {
        xml_node *f = xml_element_new(a, x, NS_XDATA, "field");
        xml_attr_set(a, f, NULL, "var", fields[i][0]);
        if (fields[i][1])
            xml_attr_set(a, f, NULL, "type", fields[i][1]);
        xml_node *v = xml_element_new(a, f, NS_XDATA, "value");
        xml_text_new(a, v, fields[i][2], strlen(fields[i][2]));
    }
    sm_iq_result(s, st, res);
    xml_arena_free(a);
}

static void upload_stanza(sm *s, sm_stanza *st, void *ctx)
{
    const upload_service *svc = ctx;
    const char *name = st->node->name;
    const char *type = sm_stanza_type(st);
    bool get = !strcmp(type, "get");
    xml_node *q = xml_child(st->node, NULL, NULL);
    if (strcmp(name, "iq") != 0) {
        if (!strcmp(name, "message") && sm_message_kind(st) != SM_MSG_ERROR)
            sm_bounce(s, st, "cancel", "service-unavailable");
        else
            sm_stanza_free(st);
    } else if (st->to.node_len || st->to.resource_len) {
        if (get || !strcmp(type, "set"))
            sm_bounce(s, st, "cancel", "item-not-found");
        else
            sm_stanza_free(st);
    } else if (q && get && xml_is(q, UPLOAD_NS, "request")) {
        request_slot(s, svc, st, q);
    } else if (q && get && xml_is(q, NS_DISCO_INFO, "query")) {
        disco_info(s, st, q);
    } else if (q && get && xml_is(q, NS_DISCO_ITEMS, "query")) {
        xml_arena *a = xml_arena_new(256);
        sm_iq_result(s, st, xml_element_new(a, NULL, NS_DISCO_ITEMS, "query"));
        xml_arena_free(a);
    } else if (get || !strcmp(type, "set")) {
        sm_bounce(s, st, "cancel", "service-unavailable");
    } else {
        sm_stanza_free(st);
    }
}

/* The host's disco#items lists its upload service. */
static bool host_items(sm *s, sm_event *ev)
{
    upload_data *d = data_of(s);
    for (size_t i = 0; i < d->nservices; i++)
        disco_host_item(ev, d->services[i].host, d->services[i].domain, UPLOAD_NAME);
    return false;
}

static bool upload_metrics(sm *s, sm_event *ev)
{
    upload_data *d = data_of(s);
    metrics_family(ev->out, "jabshard_sm_upload_slots_total", "counter",
                   "HTTP File Upload slots handed out (granted), or refused, by reason: "
                   "forbidden (not a local account), bad-request, too-large, quota, error "
                   "(storage failed).");
    metrics_sample(ev->out, "jabshard_sm_upload_slots_total", "result=\"granted\"", d->granted);
    for (int i = 0; i < REFUSALS; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "result=\"%s\"", refusal_names[i]);
        metrics_sample(ev->out, "jabshard_sm_upload_slots_total", labels, d->refused[i]);
    }
    return false;
}

/* ---- the module ---- */

/* The secret in file path, trimmed of the whitespace after it (a newline an editor added); false
 * (the configuration's error set on el) when it cannot be read or is too long. */
static bool read_secret_file(config *cfg, const xml_node *el, const char *path, upload_data *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        config_fail(cfg, el, "cannot read the upload secret from %s: %s", path, strerror(errno));
        return false;
    }
    d->secret = mem_alloc(UPLOAD_SECRET_MAX + 1);
    d->secret_len = fread(d->secret, 1, UPLOAD_SECRET_MAX + 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed || d->secret_len > UPLOAD_SECRET_MAX) {
        config_fail(cfg, el, "%s: %s", path,
                    failed ? "cannot be read" : "longer than 4096 bytes: not a secret file");
        return false;
    }
    while (d->secret_len && strchr(" \t\r\n", d->secret[d->secret_len - 1]))
        d->secret_len--;
    return true;
}

/* <upload>'s url and secret, checked; false with the configuration's error set. */
static bool read_options(config *cfg, upload_data *d)
{
    xml_node *el = config_first(cfg, NULL, "upload");
    const char *url = config_str(cfg, NULL, "upload/url", UPLOAD_URL_DEFAULT);
    const char *secret = config_str(cfg, NULL, "upload/secret", NULL);
    const char *file = config_str(cfg, NULL, "upload/secret_file", NULL);
    size_t len = strlen(url);
    while (len && url[len - 1] == '/')
        len--;
    bool scheme = !strncmp(url, "https://", 8) || !strncmp(url, "http://", 7);
    bool clean = len <= UPLOAD_URL_MAX && !strpbrk(url, "?#\"'<>\\ ");
    for (size_t i = 0; clean && i < len; i++)
        clean = (unsigned char)url[i] > 0x20 && (unsigned char)url[i] < 0x7f;
    if (!scheme || !clean || len <= (size_t)(url[4] == 's' ? 8 : 7)) {
        config_fail(cfg, config_first(cfg, NULL, "upload/url"),
                    "expected an http:// or https:// URL of at most %d bytes without a query, "
                    "got \"%s\"", UPLOAD_URL_MAX, url);
        return false;
    }
    d->url = mem_strndup(url, len);
    if (secret && file) {
        config_fail(cfg, el, "set <secret> or <secret_file>, not both");
        return false;
    }
    if (!secret && !file) {
        config_fail(cfg, el, "the upload service needs <upload><secret> or <upload><secret_file> "
                             "(the key its URLs are signed with, shared with the stores), or "
                             "leave upload out of <modules>");
        return false;
    }
    if (secret) {
        d->secret_len = strlen(secret);
        d->secret = (unsigned char *)mem_strndup(secret, d->secret_len);
    } else if (!read_secret_file(cfg, config_first(cfg, NULL, "upload/secret_file"), file, d)) {
        return false;
    }
    if (d->secret_len < UPLOAD_SECRET_MIN) {
        config_fail(cfg, config_first(cfg, NULL, secret ? "upload/secret" : "upload/secret_file"),
                    "the upload secret is %zu bytes: at least %d (openssl rand -hex 32 makes "
                    "one)", d->secret_len, UPLOAD_SECRET_MIN);
        return false;
    }
    return true;
}

static void upload_fini(sm *s, const sm_module *self);

/* The module's data, its options and its services; false (logged, or the configuration's error
 * set) when it cannot serve. */
static bool upload_start(sm *s, const sm_module *self, config *cfg)
{
    const sm_config *c = sm_cfg(s);
    upload_data *d = mem_zalloc(sizeof *d);
    d->services = mem_array(c->nhosts ? (size_t)c->nhosts : 1, sizeof *d->services);
    sm_module_set_data(s, self, d);
    if (!cfg) {
        /* A core made without a file (tests): no secret, so no service. */
        log_notice("sm: upload: no configuration, no upload service");
        return true;
    }
    if (!read_options(cfg, d))
        return false;
    for (int i = 0; i < c->nhosts; i++) {
        char def[JID_MAX_LEN + 1];
        snprintf(def, sizeof def, "upload.%s", c->hosts[i].name);
        const char *domain = config_str(cfg, c->hosts[i].el, "upload/domain", def);
        jid dj;
        if (!sm_service_domain(c, "upload", c->hosts[i].name, domain, &dj))
            return false;
        if (!dj.domain_len)
            continue;
        upload_service *svc = &d->services[d->nservices++];
        svc->domain = mem_strdup(jid_full(&dj));
        svc->host = mem_strdup(c->hosts[i].name);
        jid_free(&dj);
        if (!sm_serve_domain(s, svc->domain, upload_stanza, svc))
            return false;
    }
    log_info("sm: upload: %zu service(s), slots under %s%s", d->nservices, d->url,
             option(s, "upload/external") ? " (an external store)" : "");
    return true;
}

static bool upload_init(sm *s, const sm_module *self, config *cfg)
{
    if (upload_start(s, self, cfg))
        return true;
    /* A module that did not start is not finished by the core. */
    upload_fini(s, self);
    sm_module_set_data(s, self, NULL);
    return false;
}

static void upload_fini(sm *s, const sm_module *self)
{
    upload_data *d = data_of(s);
    if (!d)
        return;
    for (size_t i = 0; i < d->nservices; i++) {
        free(d->services[i].domain);
        free(d->services[i].host);
    }
    free(d->services);
    free(d->url);
    if (d->secret)
        OPENSSL_cleanse(d->secret, d->secret_len);
    free(d->secret);
    free(d);
}

static const sm_handler upload_handlers[] = {
    {"metrics", .hook = upload_metrics},
    {"disco-host-items", .hook = host_items},
    {NULL},
};

const sm_module mod_upload = {
    .name = "upload",
    .int_options = upload_options,
    .options = upload_paths,
    .init = upload_init,
    .fini = upload_fini,
    .handlers = upload_handlers,
};
