/* sm/mod_avatar_vcard.c — User Avatar to vCard-Based Avatars Conversion (XEP-0398): an avatar a
 * client publishes with PEP (XEP-0084) is also the account's vCard PHOTO (XEP-0153), for clients
 * and rooms that only know vCards; and every available presence of the account carries the
 * avatar's hash (<x xmlns='vcard-temp:x:update'><photo/></x>), so contacts need not fetch a vCard
 * to know it changed. Advertised on the account: urn:xmpp:pep-vcard-conversion:0.
 *
 * - On a publish to urn:xmpp:avatar:metadata, the info element without a url names the image (its
 *   id, the SHA-1 of the bytes, and type); the item of that id in urn:xmpp:avatar:data is read
 *   (from memory when it is the newest), its SHA-1 checked, and the vCard's PHOTO replaced with it
 *   (TYPE, BINVAL), within mod_vcard's bound on a vCard's size.
 * - Presence: the hash is the metadata node's newest item id, known once the account's PEP is in
 *   memory (loaded with the user, before any of its sessions is bound). A presence whose x has an
 *   empty photo (the client is not ready) or another hash keeps it; an x without photo, or none,
 *   gets the hash.
 * Conversion from vCard to PEP (optional in XEP-0398) is not done.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/xml_write.h"
#include "sm/disco.h"
#include "sm/modules.h"
#include "sm/pep.h"

#define NS_CONVERSION "urn:xmpp:pep-vcard-conversion:0"
#define NODE_METADATA "urn:xmpp:avatar:metadata"
#define NODE_DATA "urn:xmpp:avatar:data"
#define NS_UPDATE "vcard-temp:x:update"
#define NS_VCARD "vcard-temp"

/* ---- presence ---- */

/* The avatar's hash: the metadata node's newest item, when it names an image. */
static const char *avatar_hash(sm *s, const jid *bare)
{
    pep_owner *o = pep_owner_find(s, bare);
    pep_node *n = o ? pep_owner_node(o, NODE_METADATA) : NULL;
    if (!n || !n->last_id || !n->last_xml || !strstr(n->last_xml, "<info"))
        return NULL;
    return n->last_id;
}

static bool presence_out(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    if (!st || !ev->session || !st->node || *sm_stanza_type(st))
        return false;   /* available presence only */
    jid bare;
    jid_bare(&ev->session->jid, &bare);
    const char *hash = avatar_hash(s, &bare);
    jid_free(&bare);
    if (!hash)
        return false;
    xml_node *x = xml_child(st->node, NS_UPDATE, "x");
    if (x && xml_child(x, NS_UPDATE, "photo"))
        return false;   /* empty: not ready; another hash: the client's word */
    if (!x)
        x = xml_element_new(st->arena, st->node, NS_UPDATE, "x");
    xml_node *photo = xml_element_new(st->arena, x, NS_UPDATE, "photo");
    xml_text_new(st->arena, photo, hash, strlen(hash));
    return false;
}

/* The account's PEP is read with the user, so that its first presence has the hash. */
static void pep_ready(sm *s, pep_owner *o, void *ctx) {}

static bool user_load(sm *s, sm_event *ev)
{
    pep_owner_with(s, &ev->user->jid, pep_ready, NULL);
    return false;
}

/* ---- PEP to vCard ---- */

typedef struct photo {
    sm *s;
    jid owner;
    char *id, *type, *binval;   /* binval: the base64 of the data node's item */
} photo;

static void photo_free(photo *p)
{
    jid_free(&p->owner);
    free(p->id);
    free(p->type);
    free(p->binval);
    free(p);
}

/* Whether base64 b64 decodes to bytes whose SHA-1 is hex. */
static bool sha1_matches(const char *b64, const char *hex)
{
    size_t len = 0;
    char *clean = mem_alloc(strlen(b64) + 1);
    for (const char *c = b64; *c; c++)
        if (*c != ' ' && *c != '\n' && *c != '\r' && *c != '\t')
            clean[len++] = *c;
    bool ok = false;
    if (len % 4 == 0 && len) {
        unsigned char *raw = mem_alloc(len / 4 * 3 + 1);
        int n = EVP_DecodeBlock(raw, (const unsigned char *)clean, (int)len);
        if (n >= 0) {
            size_t pad = len >= 2 && clean[len - 1] == '=' ? (clean[len - 2] == '=' ? 2 : 1) : 0;
            unsigned char md[EVP_MAX_MD_SIZE];
            unsigned int mdlen = 0;
            char got[2 * EVP_MAX_MD_SIZE + 1];
            EVP_Digest(raw, (size_t)n - pad, md, &mdlen, EVP_sha1(), NULL);
            for (unsigned int i = 0; i < mdlen; i++)
                snprintf(got + 2 * i, 3, "%02x", md[i]);
            ok = strcasecmp(got, hex) == 0;
        }
        free(raw);
    }
    free(clean);
    return ok;
}

static void vcard_written(xdb_request *r, void *ctx)
{
    if (r->status != XDB_OK)
        log_warn("sm: storing the vCard of %s@%s with the PEP avatar failed: %s", r->user,
                 r->host, r->error[0] ? r->error : xdb_status_name(r->status));
}

/* The stored vCard (or none) with its PHOTO replaced. */
static void vcard_read(xdb_request *r, void *ctx)
{
    photo *p = ctx;
    sm *s = p->s;
    if (r->status == XDB_ERROR) {
        log_warn("sm: %s: the vCard could not be read for the avatar: %s", jid_full(&p->owner),
                 r->error);
        photo_free(p);
        return;
    }
    sm_stanza *card = r->status == XDB_OK ? sm_parse(s, r->value.data, r->value.len) : NULL;
    xml_arena *a = xml_arena_new(4096);
    xml_node *v = card && card->node && xml_is(card->node, NS_VCARD, "vCard")
                      ? xml_node_copy(a, NULL, card->node)
                      : xml_element_new(a, NULL, NS_VCARD, "vCard");
    xml_node *old;
    while ((old = xml_child(v, NS_VCARD, "PHOTO")))
        xml_node_detach(old);
    xml_node *ph = xml_element_new(a, v, NS_VCARD, "PHOTO");
    xml_text_new(a, xml_element_new(a, ph, NS_VCARD, "TYPE"), p->type, strlen(p->type));
    xml_text_new(a, xml_element_new(a, ph, NS_VCARD, "BINVAL"), p->binval, strlen(p->binval));
    size_t max = (size_t)sm_module_int(s, &mod_vcard, "limits/vcard_bytes"), len;
    char *xml = sm_xml_string(v, max, &len);
    if (xml) {
        xdb_request *w = sm_user_request(XDB_DOC_PUT, &p->owner);
        xdb_request_set_doc(w, "vcard", "");
        xdb_request_set_value(w, xml, len);
        w->value_max = max;
        sm_submit(s, w, vcard_written, NULL);
        free(xml);
    } else {
        log_notice("sm: %s: the PEP avatar does not fit in a vCard (limits/vcard_bytes %zu): "
                   "not converted", jid_full(&p->owner), max);
    }
    xml_arena_free(a);
    sm_stanza_free(card);
    photo_free(p);
}

/* The data item's payload (<data>base64</data>): checked, then into the vCard. */
static void data_found(photo *p, const char *xml)
{
    sm_stanza *data = xml ? sm_parse(p->s, xml, strlen(xml)) : NULL;
    if (data && data->node && xml_is(data->node, NODE_DATA, "data"))
        p->binval = mem_strdup(xml_text(data->arena, data->node));
    sm_stanza_free(data);
    if (!p->binval || !sha1_matches(p->binval, p->id)) {
        log_info("sm: %s: avatar %s: no data item of that id and hash: not converted",
                 jid_full(&p->owner), p->id);
        photo_free(p);
        return;
    }
    xdb_request *r = sm_user_request(XDB_DOC_GET, &p->owner);
    xdb_request_set_doc(r, "vcard", "");
    sm_submit(p->s, r, vcard_read, p);
}

static void data_read(xdb_request *r, void *ctx)
{
    data_found(ctx, r->status == XDB_OK && r->npep_items ? r->pep_items[0].xml : NULL);
}

static bool published(sm *s, sm_event *ev)
{
    if (!ev->user || strcmp(ev->name, NODE_METADATA) != 0)
        return false;
    sm_stanza *meta = sm_parse(s, ev->xml, ev->len);
    const xml_node *info = NULL;
    for (const xml_node *i = meta && meta->node ? xml_child(meta->node, NODE_METADATA, "info")
                                                : NULL;
         i; i = xml_next(i, NODE_METADATA, "info"))
        if (!xml_attr_get(i, "url") && xml_attr_get(i, "id")) {
            info = i;
            break;
        }
    if (info) {
        photo *p = mem_zalloc(sizeof *p);
        p->s = s;
        jid_copy(&p->owner, &ev->user->jid);
        p->id = mem_strdup(xml_attr_get(info, "id"));
        const char *type = xml_attr_get(info, "type");
        p->type = mem_strdup(type ? type : "image/png");
        pep_owner *o = pep_owner_find(s, &p->owner);
        pep_node *n = o ? pep_owner_node(o, NODE_DATA) : NULL;
        if (n && n->last_id && strcmp(n->last_id, p->id) == 0) {
            data_found(p, n->last_xml);
        } else {
            xdb_request *r = sm_user_request(XDB_PEP_ITEMS, &p->owner);
            xdb_request_set_pep(r, NODE_DATA, NULL);
            xdb_request_add_item_id(r, p->id);
            sm_submit(s, r, data_read, p);
        }
    }
    sm_stanza_free(meta);
    return false;
}

static bool account_info(sm *s, sm_event *ev)
{
    disco_feature(ev->arena, ev->node, NS_CONVERSION);
    return false;
}

static bool avatar_init(sm *s, const sm_module *self, config *cfg)
{
    if (sm_module_loaded(s, &mod_pep) && sm_module_loaded(s, &mod_vcard))
        return true;
    log_error("sm: module avatar_vcard converts PEP avatars to vCards: it needs modules pep and "
              "vcard");
    return false;
}

static const sm_handler avatar_handlers[] = {
    {"presence-out", .hook = presence_out},
    {"user-load", .hook = user_load},
    {"pep-published", .hook = published},
    {"disco-account-info", .hook = account_info},
    {NULL},
};

const sm_module mod_avatar_vcard = {
    .name = "avatar_vcard",
    .init = avatar_init,
    .handlers = avatar_handlers,
};
