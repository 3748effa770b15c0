/* shard/csi.c — client state indication: classifying the SM's stanzas and holding them (see
 * csi.h).
 *
 * Classifying scans bytes instead of parsing them. The payload is the SM's own serialization
 * (core/xml_write.c), whose form is fixed: a tag is '<' name, then attributes written
 * " name='value'", then '>' or "/>"; an end tag is "</" name '>'; text and attribute values escape
 * '<', '>' and '&' (values also ' and "), so a '<' outside a tag always starts one and a value
 * always ends at the next '. Namespaces follow the classic rule: an element carries xmlns='uri'
 * where its namespace differs from its parent's, jabber:client being the default around the
 * stanza; a prefix appears only where the writer hoisted a URI or for the stream namespace, never
 * on ordinary stanzas. In that form the scan below is exact: it tracks the depth and each open
 * element's namespace down to the depth the rules look at (a carbon's forwarded message's
 * children, six levels), and only counts deeper ones. Whatever it does not recognise — a prefixed
 * element where the rules look, a broken tag, bytes after the stanza — is urgent: holding is an
 * optimisation, so doubt always means "write it now". Cost: one pass, no allocation, no parser
 * to keep per connection (expat would need a stream per connection or per thread and a tree per
 * stanza, for an answer that three attribute values and a few child names give). */
#include "shard/csi.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define NS_CLIENT "jabber:client"
/* Levels whose element's name and namespace are kept: the root (0), a carbon (1), its
 * <forwarded/> (2), the forwarded message (3), its children (4) and theirs (5). */
#define SCAN_LEVELS 6

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool span_is(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

typedef struct level {
    span name, ns;
    bool message;   /* a message whose children the rules read: the root, or a carbon's */
} level;

/* Whether a child (ns, name) of a message makes it urgent (mod_csi_simple's list, with the
 * encryption schemes named directly). */
static bool urgent_child(span ns, span name)
{
    if (span_is(ns, NS_CLIENT))
        return span_is(name, "body") || span_is(name, "subject");
    static const struct {
        const char *ns, *name;   /* name NULL: any element of ns */
    } urgent[] = {
        {"urn:xmpp:eme:0", "encryption"},                   /* XEP-0380 */
        {"eu.siacs.conversations.axolotl", "encrypted"},    /* OMEMO (0.3) */
        {"urn:xmpp:omemo:2", "encrypted"},                  /* OMEMO 2 */
        {"urn:xmpp:openpgp:0", "openpgp"},                  /* XEP-0373 */
        {"jabber:x:encrypted", "x"},                        /* XEP-0027 */
        {"jabber:x:conference", "x"},                       /* XEP-0249 invitation */
        {"urn:xmpp:jingle-message:0", NULL},                /* XEP-0353: a call */
        {"urn:xmpp:carbons:2", "sent"},                     /* the user's own message */
    };
    for (size_t i = 0; i < sizeof urgent / sizeof urgent[0]; i++)
        if (span_is(ns, urgent[i].ns) && (!urgent[i].name || span_is(name, urgent[i].name)))
            return true;
    return false;
}

/* Reads a name at *p (up to a space, '/', '>', '=' or a quote); false if empty or unterminated. */
static bool scan_name(const char **p, const char *end, span *out)
{
    const char *s = *p;
    while (*p < end && **p != ' ' && **p != '/' && **p != '>' && **p != '=' && **p != '\'' &&
           **p != '<' && **p != '"')
        (*p)++;
    if (*p == s || *p == end)
        return false;
    *out = (span){s, (size_t)(*p - s)};
    return true;
}

csi_kind csi_classify(const char *xml, size_t len, const char **key, size_t *keylen)
{
    const char *p = xml, *end = xml + len;
    level lv[SCAN_LEVELS];
    size_t depth = 0;          /* open elements */
    bool root_done = false, urgent = false;
    span type = {NULL, 0}, from = {NULL, 0}, root = {NULL, 0};
    *key = NULL;
    *keylen = 0;
    while (p < end) {
        if (*p != '<') {
            if (!depth)
                return CSI_URGENT;   /* text outside the stanza */
            const char *lt = memchr(p, '<', (size_t)(end - p));
            if (!lt)
                return CSI_URGENT;
            p = lt;
            continue;
        }
        if (root_done)
            return CSI_URGENT;       /* a second element after the stanza */
        p++;
        if (p < end && *p == '/') {
            p++;
            span name;
            if (!depth || !scan_name(&p, end, &name) || *p != '>')
                return CSI_URGENT;
            p++;
            depth--;
            if (depth < SCAN_LEVELS && (lv[depth].name.n != name.n ||
                                        memcmp(lv[depth].name.p, name.p, name.n) != 0))
                return CSI_URGENT;
            if (!depth)
                root_done = true;
            continue;
        }
        span name, ns = {NULL, 0};
        if (!scan_name(&p, end, &name))
            return CSI_URGENT;
        bool keep = depth < SCAN_LEVELS;
        if (keep && memchr(name.p, ':', name.n))
            return CSI_URGENT;       /* a hoisted or stream prefix where the rules look */
        bool has_ns = false;
        while (p < end && *p == ' ') {
            p++;
            span an;
            if (!scan_name(&p, end, &an) || end - p < 2 || p[0] != '=' || p[1] != '\'')
                return CSI_URGENT;
            p += 2;
            const char *q = memchr(p, '\'', (size_t)(end - p));
            if (!q)
                return CSI_URGENT;
            span value = {p, (size_t)(q - p)};
            p = q + 1;
            if (span_is(an, "xmlns")) {
                ns = value;
                has_ns = true;
            } else if (!depth && span_is(an, "type")) {
                type = value;
            } else if (!depth && span_is(an, "from")) {
                from = value;
            }
        }
        bool empty = false;
        if (p < end && *p == '/') {
            empty = true;
            p++;
        }
        if (p >= end || *p != '>')
            return CSI_URGENT;
        p++;
        if (keep) {
            if (!has_ns)
                ns = depth ? lv[depth - 1].ns : (span){NS_CLIENT, strlen(NS_CLIENT)};
            level *l = &lv[depth];
            *l = (level){name, ns, false};
            if (!depth) {
                if (!span_is(ns, NS_CLIENT))
                    return CSI_URGENT;
                root = name;
                l->message = span_is(name, "message");
            } else if (lv[depth - 1].message) {
                urgent |= urgent_child(ns, name);
            } else if (depth >= 2 && lv[depth - 2].message && span_is(ns, "http://jabber.org/protocol/muc#user") &&
                       span_is(name, "invite") && span_is(lv[depth - 1].name, "x") &&
                       span_is(lv[depth - 1].ns, "http://jabber.org/protocol/muc#user")) {
                urgent = true;       /* a mediated MUC invitation */
            } else if (depth == 3 && span_is(name, "message") && span_is(ns, NS_CLIENT) &&
                       span_is(lv[1].name, "received") && span_is(lv[1].ns, "urn:xmpp:carbons:2") &&
                       span_is(lv[2].name, "forwarded") && span_is(lv[2].ns, "urn:xmpp:forward:0")) {
                l->message = true;   /* a carbon of a message someone sent the user: judged by it */
            }
        }
        if (!empty)
            depth++;
        else if (!depth)
            root_done = true;
    }
    if (!root_done)
        return CSI_URGENT;
    if (span_is(root, "presence")) {
        if (!type.p || span_is(type, "unavailable")) {
            *key = from.p;
            *keylen = from.n;
            return CSI_PRESENCE;
        }
        /* An error about a presence of ours can wait; subscription requests and probes are a
         * person's or must be answered. */
        return span_is(type, "error") ? CSI_LATER : CSI_URGENT;
    }
    if (span_is(root, "message")) {
        if (span_is(type, "headline"))
            return CSI_LATER;        /* ephemeral by definition, whatever it carries */
        if (span_is(type, "error"))
            return CSI_URGENT;       /* a message of the user's that failed */
        return urgent ? CSI_URGENT : CSI_LATER;
    }
    return CSI_URGENT;               /* iq: asked for, or to be answered */
}

/* ---- the hold -------------------------------------------------------------------------------- */

typedef struct held {
    outq_block *blk;       /* a copy of the stanza, ours */
    size_t len;
    size_t key_off, key_len;   /* a presence's 'from' inside blk; key_len 0: supersedes nothing */
    uint64_t key_hash;
} held;

struct csi {
    const front_csi *limits;
    csi_stats *stats;
    bool inactive;
    held *items;           /* oldest first */
    size_t n, cap, bytes;
};

static void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* FNV-1a: only to skip most comparisons of keys that differ. */
static uint64_t key_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

csi *csi_new(const front_csi *limits, csi_stats *stats)
{
    csi *h = mem_zalloc(sizeof *h);
    h->limits = limits;
    h->stats = stats;
    return h;
}

void csi_free(csi *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        outq_block_unref(h->items[i].blk);
    free(h->items);
    free(h);
}

void csi_set_inactive(csi *h, bool inactive) { h->inactive = inactive; }
bool csi_inactive(const csi *h) { return h->inactive; }
size_t csi_count(const csi *h) { return h->n; }

/* Drops the held presence from the same sender, if any: the newer one says all it said. */
static void supersede(csi *h, const char *key, size_t key_len, uint64_t hash)
{
    for (size_t i = 0; i < h->n; i++) {
        held *x = &h->items[i];
        if (x->key_len != key_len || x->key_hash != hash ||
            memcmp(outq_block_data(x->blk) + x->key_off, key, key_len) != 0)
            continue;
        add(&h->stats->superseded, 1);
        add(&h->stats->superseded_bytes, x->len);
        add(&h->stats->wakeups_saved, 1);
        h->bytes -= x->len;
        outq_block_unref(x->blk);
        memmove(x, x + 1, (h->n - i - 1) * sizeof *x);
        h->n--;
        return;   /* there is never more than one: each supersedes the one before */
    }
}

csi_verdict csi_offer(csi *h, const char *xml, size_t len)
{
    if (!h->inactive)
        return CSI_DELIVER;
    const char *key;
    size_t key_len;
    csi_kind kind = csi_classify(xml, len, &key, &key_len);
    if (kind == CSI_URGENT)
        return CSI_DELIVER;
    uint64_t hash = 0;
    if (kind == CSI_PRESENCE && key_len) {
        hash = key_hash(key, key_len);
        supersede(h, key, key_len, hash);
    } else {
        key_len = 0;
    }
    /* Past a bound, this one goes now and takes everything held with it. */
    if (h->n + 1 > h->limits->max_stanzas || h->bytes + len > h->limits->max_bytes)
        return CSI_DELIVER;
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 8;
        h->items = mem_realloc(h->items, h->cap * sizeof *h->items);
    }
    h->items[h->n++] = (held){outq_block_copy(xml, len), len,
                              key_len ? (size_t)(key - xml) : 0, key_len, hash};
    h->bytes += len;
    add(&h->stats->held, 1);
    return h->n == 1 ? CSI_HELD_FIRST : CSI_HELD;
}

void csi_take(csi *h, csi_take_mode mode, void (*fn)(void *arg, outq_block *blk, size_t len),
              void *arg)
{
    if (!h || !h->n)
        return;
    if (mode != CSI_RETURN) {
        add(&h->stats->flushes, 1);
        add(&h->stats->flushed_bytes, h->bytes);
        /* One write carries them all: alone, it is the one write that would have happened
         * anyway for the first of them. */
        add(&h->stats->wakeups_saved, mode == CSI_BEFORE ? h->n : h->n - 1);
    }
    /* fn may write to the connection; the items are ours until the loop is over. */
    held *items = h->items;
    size_t n = h->n;
    h->items = NULL;
    h->n = h->cap = h->bytes = 0;
    for (size_t i = 0; i < n; i++)
        fn(arg, items[i].blk, items[i].len);
    free(items);
}
