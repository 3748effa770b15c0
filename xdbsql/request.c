/* xdbsql/request.c — building and freeing storage requests (xdb_request). */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/store.h"

static char *dup_or_null(const char *s)
{
    return s ? mem_strdup(s) : NULL;
}

xdb_request *xdb_request_new(xdb_op op, const char *host, const char *user)
{
    xdb_request *r = mem_zalloc(sizeof(*r));
    r->op = op;
    r->host = dup_or_null(host);
    r->user = dup_or_null(user);
    return r;
}

static void replace(char **slot, const char *value)
{
    free(*slot);
    *slot = dup_or_null(value);
}

void xdb_request_set_password(xdb_request *r, const char *password)
{
    if (r->password)
        OPENSSL_cleanse(r->password, strlen(r->password));
    replace(&r->password, password);
}

void xdb_request_set_jid(xdb_request *r, const char *jid)
{
    replace(&r->jid, jid);
}

void xdb_request_set_xml(xdb_request *r, const char *xml)
{
    replace(&r->xml, xml);
}

void xdb_request_set_doc(xdb_request *r, const char *store, const char *key)
{
    replace(&r->store, store);
    replace(&r->key, key ? key : "");
}

void xdb_request_set_key(xdb_request *r, const char *key)
{
    replace(&r->key, key);
}

void xdb_value_copy(xdb_value *v, const void *data, size_t len)
{
    free(v->data);
    v->data = mem_alloc(len + 1);
    if (len)
        memcpy(v->data, data, len);
    v->data[len] = '\0';
    v->len = len;
}

void xdb_request_set_value(xdb_request *r, const void *data, size_t len)
{
    xdb_value_copy(&r->value, data, len);
}

void xdb_strings_push(xdb_strings *s, const char *value)
{
    s->v = mem_realloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n++] = mem_strdup(value);
}

static void strings_free(xdb_strings *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void item_free(xdb_roster_item *item)
{
    free(item->jid);
    free(item->name);
    for (size_t i = 0; i < item->ngroups; i++)
        free(item->groups[i]);
    free(item->groups);
    memset(item, 0, sizeof(*item));
}

void xdb_request_set_item(xdb_request *r, const xdb_roster_item *item)
{
    item_free(&r->item);
    r->item.jid = dup_or_null(item->jid);
    r->item.name = dup_or_null(item->name);
    r->item.subscription = item->subscription;
    r->item.ask = item->ask;
    if (item->ngroups) {
        r->item.groups = mem_array(item->ngroups, sizeof(char *));
        for (size_t i = 0; i < item->ngroups; i++)
            r->item.groups[i] = mem_strdup(item->groups[i]);
        r->item.ngroups = item->ngroups;
    }
}

void xdb_request_add_jid(xdb_request *r, const char *jid)
{
    xdb_strings_push(&r->jids, jid);
}

void xdb_request_set_pep(xdb_request *r, const char *node, const char *item_id)
{
    replace(&r->node, node);
    replace(&r->item_id, item_id);
}

void xdb_request_add_item_id(xdb_request *r, const char *item_id)
{
    xdb_strings_push(&r->item_ids, item_id);
}

void xdb_request_add_mam(xdb_request *r, const char *host, const char *user, int64_t stamp,
                         const char *stanza_id, const char *peer, const char *resource,
                         const char *xml)
{
    if (r->mam.n == r->mam.cap) {
        r->mam.cap = r->mam.cap ? r->mam.cap * 2 : 8;
        r->mam.v = mem_realloc(r->mam.v, r->mam.cap * sizeof(*r->mam.v));
    }
    r->mam.v[r->mam.n++] = (xdb_mam_entry){
        stamp,
        mem_strdup(stanza_id),
        mem_strdup(peer),
        mem_strdup(resource ? resource : ""),
        mem_strdup(xml),
        host ? mem_strdup(host) : NULL,
        user ? mem_strdup(user) : NULL};
}

static void pep_item_free(xdb_pep_item *it)
{
    free(it->id);
    free(it->xml);
}

void xdb_request_add_stanza(xdb_request *r, const char *xml)
{
    xdb_strings_push(&r->stanzas, xml);
}

void xdb_request_free(xdb_request *r)
{
    if (!r)
        return;
    free(r->host);
    free(r->user);
    xdb_request_set_password(r, NULL);
    OPENSSL_cleanse(&r->creds, sizeof(r->creds));
    item_free(&r->item);
    free(r->jid);
    free(r->xml);
    strings_free(&r->jids);
    free(r->store);
    free(r->key);
    free(r->value.data);
    for (size_t i = 0; i < r->docs.n; i++) {
        free(r->docs.v[i].key);
        free(r->docs.v[i].value.data);
    }
    free(r->docs.v);
    for (size_t i = 0; i < r->roster.nitems; i++)
        item_free(&r->roster.items[i]);
    free(r->roster.items);
    for (size_t i = 0; i < r->roster.npending; i++) {
        free(r->roster.pending[i].jid);
        free(r->roster.pending[i].xml);
    }
    free(r->roster.pending);
    for (size_t i = 0; i < r->noffline; i++)
        free(r->offline[i].xml);
    free(r->offline);
    strings_free(&r->users);
    strings_free(&r->stanzas);
    for (size_t i = 0; i < r->nhibernations; i++) {
        xdb_hibernation *h = &r->hibernations[i];
        free(h->host);
        free(h->user);
        free(h->id);
        free(h->record.data);
        strings_free(&h->stanzas);
    }
    free(r->hibernations);
    free(r->node);
    free(r->item_id);
    strings_free(&r->item_ids);
    for (size_t i = 0; i < r->npep_nodes; i++) {
        free(r->pep_nodes[i].node);
        free(r->pep_nodes[i].config.data);
        pep_item_free(&r->pep_nodes[i].last);
    }
    free(r->pep_nodes);
    for (size_t i = 0; i < r->npep_items; i++)
        pep_item_free(&r->pep_items[i]);
    free(r->pep_items);
    for (size_t i = 0; i < r->mam.n; i++) {
        free(r->mam.v[i].stanza_id);
        free(r->mam.v[i].peer);
        free(r->mam.v[i].resource);
        free(r->mam.v[i].xml);
        free(r->mam.v[i].host);
        free(r->mam.v[i].user);
    }
    free(r->mam.v);
    free(r->mam_query.peer);
    free(r->mam_query.resource);
    free(r->mam_query.after_id);
    free(r->mam_query.before_id);
    strings_free(&r->mam_query.ids);
    free(r);
}
