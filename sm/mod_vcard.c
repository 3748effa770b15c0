/* sm/mod_vcard.c — vcard-temp (XEP-0054): a user sets their own vCard and anyone gets any
 * account's, kept as XML text in the document store (store "vcard", key ""). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/module.h"
#include "sm/modules.h"

#define NS_VCARD "vcard-temp"
#define VCARD_STORE "vcard"

typedef struct vcard_ctx {
    sm *s;
    sm_stanza *st;      /* the iq being answered */
    bool own;
} vcard_ctx;

static void vcard_got(xdb_request *r, void *ctx)
{
    vcard_ctx *c = ctx;
    sm_stanza *card = NULL;
    if (r->status == XDB_OK)
        card = sm_parse(c->s, r->value.data, r->value.len);
    if (card) {
        sm_iq_result(c->s, c->st, card->node);
    } else if (r->status == XDB_ERROR) {
        log_warn("sm: reading the vCard of %s@%s failed: %s", r->user, r->host, r->error);
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    } else if (c->own) {
        /* §3.1: no vCard yet: an empty one. */
        xml_arena *a = xml_arena_new(128);
        sm_iq_result(c->s, c->st, xml_element_new(a, NULL, NS_VCARD, "vCard"));
        xml_arena_free(a);
    } else {
        sm_bounce(c->s, c->st, "cancel", "item-not-found");   /* §3.2: none, or no such user */
    }
    sm_stanza_free(card);
    free(c);
}

static void vcard_stored(xdb_request *r, void *ctx)
{
    vcard_ctx *c = ctx;
    if (r->status == XDB_OK) {
        sm_iq_result(c->s, c->st, NULL);
    } else {
        if (r->status == XDB_ERROR || r->status == XDB_INVALID)
            log_warn("sm: storing the vCard of %s@%s failed: %s", r->user, r->host, r->error);
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    }
    free(c);
}

static void vcard_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    if (strcmp(payload->name, "vCard") != 0) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    bool own = sm_stanza_to_self(st);
    const jid *owner = st->to.domain_len ? &st->to : &st->origin->jid;
    vcard_ctx *c = mem_zalloc(sizeof(*c));
    c->s = s;
    c->own = own;
    if (strcmp(sm_stanza_type(st), "get") == 0) {
        xdb_request *r = sm_user_request(XDB_DOC_GET, owner);
        xdb_request_set_doc(r, VCARD_STORE, "");
        c->st = sm_iq_keep(st);
        sm_submit(s, r, vcard_got, c);
        return;
    }
    if (!own) {
        free(c);
        sm_bounce(s, st, "auth", "forbidden");   /* §3.3: only one's own */
        return;
    }
    /* Avatars travel inside vCards (XEP-0153), so the limit is generous, but a vCard is not a
     * file store. */
    long long limit = sm_module_int(s, &mod_vcard, "limits/vcard_bytes");
    size_t len;
    char *xml = sm_xml_string(payload, (size_t)limit, &len);
    if (!xml) {
        free(c);
        char why[64];
        snprintf(why, sizeof why, "a vCard is limited to %lld bytes", limit);
        sm_bounce_text(s, st, "modify", "not-acceptable", why);
        return;
    }
    xdb_request *r = sm_user_request(XDB_DOC_PUT, owner);
    xdb_request_set_doc(r, VCARD_STORE, "");
    xdb_request_set_value(r, xml, len);
    r->value_max = (size_t)limit;
    free(xml);
    c->st = sm_iq_keep(st);
    sm_submit(s, r, vcard_stored, c);
}

/* limits/vcard_bytes: the most a serialized vCard may take. */
static const sm_int_option vcard_options[] = {
    {"limits/vcard_bytes", 64 * 1024, 1024, 1 << 20},
    {NULL},
};

static const sm_handler vcard_handlers[] = {
    {"iq/bare/" NS_VCARD ":*", .iq = vcard_iq},
    {NULL},
};

const sm_module mod_vcard = {
    .name = "vcard",
    .int_options = vcard_options,
    .handlers = vcard_handlers,
    .features = (const char *const[]){NS_VCARD, NULL},
};
