/* core/jid.c — JID parsing and normalisation (see jid.h for the rules and the representation).
 *
 * Each part is prepared into a stack buffer laid out as "node@domain/resource", then copied once
 * into the jid (inside the struct when short). A part made only of ASCII bytes never reaches
 * libidn: for ASCII, nodeprep and nameprep only fold A-Z, resourceprep changes nothing, and the
 * prohibited ASCII characters are the controls (and, for nodeprep, space and "&'/:<>@). A part
 * with any non-ASCII byte goes to stringprep whole, because NFKC can join an ASCII character
 * with a following combining mark ("<" + U+0338 is U+226E, which nodeprep allows).
 */
#include "core/jid.h"

#include "core/mem.h"
#include "core/utf8.h"

#include <arpa/inet.h>
#include <idna.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

_Static_assert(sizeof(jid) == 64, "a jid is meant to fill one cache line");
_Static_assert(JID_MAX_LEN <= UINT16_MAX, "part lengths are stored as uint16_t");

#define JID_LABEL_MAX 63 /* octets in a DNS label (RFC 1035), checked in ASCII form */

/* What preparing one part can say; jid_err_of() turns it into the part's own error. */
typedef enum { PREP_OK, PREP_EMPTY, PREP_TOO_LONG, PREP_PROHIBITED, PREP_INVALID, PREP_UTF8 } jid_prep;
typedef enum { JID_PART_NODE, JID_PART_DOMAIN, JID_PART_RESOURCE } jid_part;

static jid_err jid_err_of(jid_part part, jid_prep r)
{
    static const jid_err errs[3][6] = {
        [JID_PART_NODE] = { JID_OK, JID_ERR_NODE_EMPTY, JID_ERR_NODE_TOO_LONG,
                            JID_ERR_NODE_PROHIBITED, JID_ERR_NODE_PROHIBITED, JID_ERR_UTF8 },
        [JID_PART_DOMAIN] = { JID_OK, JID_ERR_DOMAIN_EMPTY, JID_ERR_DOMAIN_TOO_LONG,
                              JID_ERR_DOMAIN_PROHIBITED, JID_ERR_DOMAIN_INVALID, JID_ERR_UTF8 },
        [JID_PART_RESOURCE] = { JID_OK, JID_ERR_RESOURCE_EMPTY, JID_ERR_RESOURCE_TOO_LONG,
                                JID_ERR_RESOURCE_PROHIBITED, JID_ERR_RESOURCE_PROHIBITED,
                                JID_ERR_UTF8 },
    };
    return errs[part][r];
}

/* ---- ASCII ---------------------------------------------------------------------- */

static inline unsigned char jid_ascii_lower(unsigned char c)
{
    return (unsigned char)(c + ((unsigned)(c - 'A') < 26u) * 32u);
}

/* Sets of ASCII characters as two 64-bit masks (characters 0-63 and 64-127). */
typedef struct { uint64_t lo, hi; } jid_ascii_set;
#define JID_BIT(c) (UINT64_C(1) << ((c) & 63))
#define JID_CONTROLS UINT64_C(0xffffffff) /* U+0000-U+001F; U+007F is added to hi */

/* nodeprep: C.1.1 (space), C.2.1 (controls) and its own table of "&'/:<>@ (RFC 6122 A.5). */
static const jid_ascii_set jid_node_prohibited = {
    JID_CONTROLS | JID_BIT(' ') | JID_BIT('"') | JID_BIT('&') | JID_BIT('\'') | JID_BIT('/') |
        JID_BIT(':') | JID_BIT('<') | JID_BIT('>'),
    JID_BIT('@') | JID_BIT(0x7f),
};
/* resourceprep: C.2.1 only (an ASCII space is allowed, RFC 6122 B.5). */
static const jid_ascii_set jid_resource_prohibited = { JID_CONTROLS, JID_BIT(0x7f) };

static inline bool jid_ascii_in(const jid_ascii_set *set, unsigned char c)
{
    return ((c < 64 ? set->lo >> c : set->hi >> (c - 64)) & 1) != 0;
}

static bool jid_is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* ---- stringprep ----------------------------------------------------------------------------- */

/* Runs a libidn profile on in (valid UTF-8, at most JID_PART_INPUT_MAX bytes) into out, which
 * has room for room bytes. */
static jid_prep jid_stringprep(const char *in, size_t len, const Stringprep_profile *profile,
                               char *out, size_t room, size_t *out_len)
{
    char buf[JID_PART_INPUT_MAX + 4];
    /* stringprep reads a C string: an embedded NUL would silently cut the input. NUL is a C.2.1
     * control, prohibited by every profile used here. */
    if (memchr(in, 0, len))
        return PREP_PROHIBITED;
    memcpy(buf, in, len);
    buf[len] = '\0';
    /* Flags 0: unassigned code points allowed, as in jabberd2, ejabberd and Prosody. */
    int rc = stringprep(buf, sizeof buf, 0, profile);
    if (rc == STRINGPREP_TOO_SMALL_BUFFER)
        return PREP_TOO_LONG;
    if (rc == STRINGPREP_MALLOC_ERROR) {
        /* Same policy as core/mem: running out of memory is not an input error. */
        fprintf(stderr, "jabshard: out of memory in stringprep\n");
        abort();
    }
    if (rc != STRINGPREP_OK)
        return PREP_PROHIBITED;
    size_t n = strlen(buf);
    if (n == 0) /* everything was mapped to nothing (U+00AD, U+200B, ...) */
        return PREP_EMPTY;
    if (n > room)
        return PREP_TOO_LONG;
    memcpy(out, buf, n);
    *out_len = n;
    return PREP_OK;
}

/* Node or resource: the ASCII fast path, else the whole part through stringprep. out has room
 * for JID_PART_MAX bytes. */
static jid_prep jid_prep_simple(jid_part part, const char *in, size_t len, char *out,
                                size_t *out_len)
{
    const jid_ascii_set *prohibited =
        part == JID_PART_NODE ? &jid_node_prohibited : &jid_resource_prohibited;
    bool fold = part == JID_PART_NODE;

    if (len == 0)
        return PREP_EMPTY;
    if (len > JID_PART_INPUT_MAX)
        return PREP_TOO_LONG;

    bool bad = false;
    size_t i;
    for (i = 0; i < len && i < JID_PART_MAX; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            break;
        bad |= jid_ascii_in(prohibited, c);
        out[i] = (char)(fold ? jid_ascii_lower(c) : c);
    }
    if (i == len) {
        *out_len = len;
        return bad ? PREP_PROHIBITED : PREP_OK;
    }
    int kind = utf8_scan(in, len);
    if (kind < 0)
        return PREP_UTF8;
    if (kind == 1) /* ASCII, longer than JID_PART_MAX: preparation keeps the length */
        return PREP_TOO_LONG;
    return jid_stringprep(in, len,
                          part == JID_PART_NODE ? stringprep_xmpp_nodeprep
                                                : stringprep_xmpp_resourceprep,
                          out, JID_PART_MAX, out_len);
}

/* ---- domain --------------------------------------------------------------------------------- */

/* Length of the label separator at s[0], 0 if none. IDNA2003 §3.1 counts four: U+002E, U+3002,
 * U+FF0E and U+FF61. */
static size_t jid_dot_len(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] == '.')
        return 1;
    if (len >= 3 && ((s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x82) ||
                     (s[0] == 0xef && s[1] == 0xbc && s[2] == 0x8e) ||
                     (s[0] == 0xef && s[1] == 0xbd && s[2] == 0xa1)))
        return 3;
    return 0;
}

/* Length of a separator that ends s (valid UTF-8), 0 if none. */
static size_t jid_final_dot_len(const char *s, size_t len)
{
    if (len >= 1 && s[len - 1] == '.')
        return 1;
    if (len >= 3 && jid_dot_len(s + len - 3, 3) == 3)
        return 3;
    return 0;
}

/* STD3 host name rules on a lowercase ASCII label: letters, digits and inner hyphens. */
static bool jid_ldh_label(const char *s, size_t len)
{
    if (len == 0 || len > JID_LABEL_MAX || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

/* One label (no separators in it) into out, which has room for room bytes. */
static jid_prep jid_prep_label(const char *in, size_t len, char *out, size_t room, size_t *out_len)
{
    if (len == 0)
        return PREP_INVALID;
    if (jid_is_ascii(in, len)) {
        if (len > room)
            return PREP_TOO_LONG;
        for (size_t i = 0; i < len; i++)
            out[i] = (char)jid_ascii_lower((unsigned char)in[i]);
        *out_len = len;
        return jid_ldh_label(out, len) ? PREP_OK : PREP_INVALID;
    }

    size_t n;
    jid_prep r = jid_stringprep(in, len, stringprep_nameprep, out, room, &n);
    if (r == PREP_EMPTY)
        return PREP_INVALID;
    if (r != PREP_OK)
        return r;
    *out_len = n;
    if (jid_is_ascii(out, n)) /* e.g. full-width letters: now a plain label */
        return jid_ldh_label(out, n) ? PREP_OK : PREP_INVALID;

    /* A U-label: ToASCII applies STD3 to its ASCII characters, the 63-octet limit to its
     * punycode form and refuses an "xn--" prefix. It would split at a dot that preparation made
     * (U+FF61 becomes U+3002), so one label must come back as one label. */
    char label[JID_PART_MAX + 1];
    memcpy(label, out, n);
    label[n] = '\0';
    char *ace = NULL;
    int rc = idna_to_ascii_8z(label, &ace, IDNA_USE_STD3_ASCII_RULES | IDNA_ALLOW_UNASSIGNED);
    if (rc == IDNA_MALLOC_ERROR) {
        fprintf(stderr, "jabshard: out of memory in idna_to_ascii_8z\n");
        abort();
    }
    bool ok = rc == IDNA_SUCCESS && !strchr(ace, '.');
    free(ace);
    return ok ? PREP_OK : PREP_INVALID;
}

/* "[IPv6]" as RFC 3986 IP-literal; IPvFuture and zone ids are not accepted. Kept as written,
 * lowercased (as nameprep would), so equal strings are equal addresses in the usual case. */
static jid_prep jid_prep_ip_literal(const char *in, size_t len, char *out, size_t *out_len)
{
    char addr[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (len < 4 || in[len - 1] != ']' || len - 2 >= sizeof addr)
        return PREP_INVALID;
    for (size_t i = 1; i < len - 1; i++) {
        unsigned char c = (unsigned char)in[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != ':' && c != '.')
            return PREP_INVALID;
    }
    memcpy(addr, in + 1, len - 2);
    addr[len - 2] = '\0';
    if (inet_pton(AF_INET6, addr, &a) != 1)
        return PREP_INVALID;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)jid_ascii_lower((unsigned char)in[i]);
    *out_len = len;
    return PREP_OK;
}

/* The domain, label by label (IDNA2003 prepares labels, not whole names: a right-to-left label
 * next to a left-to-right one is fine). out has room for JID_PART_MAX bytes. */
static jid_prep jid_prep_domain(const char *in, size_t len, char *out, size_t *out_len)
{
    if (len == 0)
        return PREP_EMPTY;
    if (len > JID_PART_INPUT_MAX)
        return PREP_TOO_LONG;
    if (utf8_scan(in, len) < 0)
        return PREP_UTF8;
    /* RFC 6122 §2.2 / RFC 7622 §3.2: one final dot is stripped before anything else. */
    len -= jid_final_dot_len(in, len);
    if (len == 0)
        return PREP_EMPTY;
    if (in[0] == '[')
        return jid_prep_ip_literal(in, len, out, out_len);

    size_t o = 0, start = 0;
    for (;;) {
        size_t end = start, dot = 0;
        while (end < len && !(dot = jid_dot_len(in + end, len - end)))
            end++;
        if (o > 0) {
            if (o == JID_PART_MAX)
                return PREP_TOO_LONG;
            out[o++] = '.';
        }
        size_t n;
        jid_prep r = jid_prep_label(in + start, end - start, out + o, JID_PART_MAX - o, &n);
        if (r != PREP_OK)
            return r;
        o += n;
        if (end == len)
            break;
        start = end + dot;
    }
    *out_len = o;
    return PREP_OK;
}

/* ---- storage -------------------------------------------------------------------------------- */

static size_t jid_len_of(size_t node_len, size_t domain_len, size_t resource_len)
{
    return node_len + (node_len > 0) + domain_len + (resource_len > 0) + resource_len;
}

/* Fills *out (overwritten, not freed) from "node@domain/resource" in str, which may point into
 * another jid's buffer. */
static void jid_assign(jid *out, const char *str, size_t node_len, size_t domain_len,
                       size_t resource_len)
{
    size_t len = jid_len_of(node_len, domain_len, resource_len);
    memset(out, 0, sizeof *out);
    char *dst = out->u.inline_buf;
    if (len > JID_INLINE_MAX)
        dst = out->u.heap = mem_alloc(len + 1);
    memcpy(dst, str, len);
    dst[len] = '\0';
    out->node_len = (uint16_t)node_len;
    out->domain_len = (uint16_t)domain_len;
    out->resource_len = (uint16_t)resource_len;
}

void jid_free(jid *j)
{
    if (jid_full_len(j) > JID_INLINE_MAX)
        free(j->u.heap);
    memset(j, 0, sizeof *j);
}

/* ---- public --------------------------------------------------------------------------------- */

jid_err jid_make(const char *node, size_t node_len, const char *domain, size_t domain_len,
                 const char *resource, size_t resource_len, jid *out)
{
    char buf[JID_MAX_LEN + 1];
    size_t o = 0, n = 0, dn = 0, rn = 0;
    jid_prep r;

    memset(out, 0, sizeof *out);
    if (node) {
        if ((r = jid_prep_simple(JID_PART_NODE, node, node_len, buf, &n)) != PREP_OK)
            return jid_err_of(JID_PART_NODE, r);
        o = n;
        buf[o++] = '@';
    }
    if (!domain)
        return JID_ERR_DOMAIN_EMPTY;
    if ((r = jid_prep_domain(domain, domain_len, buf + o, &dn)) != PREP_OK)
        return jid_err_of(JID_PART_DOMAIN, r);
    o += dn;
    if (resource) {
        buf[o++] = '/';
        if ((r = jid_prep_simple(JID_PART_RESOURCE, resource, resource_len, buf + o, &rn)) !=
            PREP_OK)
            return jid_err_of(JID_PART_RESOURCE, r);
    }
    jid_assign(out, buf, n, dn, rn);
    return JID_OK;
}

jid_err jid_parse(const char *s, size_t len, jid *out)
{
    if (len == 0) {
        memset(out, 0, sizeof *out);
        return JID_ERR_EMPTY;
    }
    const char *slash = memchr(s, '/', len);
    size_t bare_len = slash ? (size_t)(slash - s) : len;
    const char *at = memchr(s, '@', bare_len);
    const char *domain = at ? at + 1 : s;
    return jid_make(at ? s : NULL, at ? (size_t)(at - s) : 0, domain,
                    (size_t)(s + bare_len - domain), slash ? slash + 1 : NULL,
                    slash ? len - bare_len - 1 : 0, out);
}

jid_err jid_set_resource(jid *j, const char *resource, size_t len)
{
    char buf[JID_MAX_LEN + 1];
    size_t bare = jid_bare_len(j), n;
    if (j->domain_len == 0)
        return JID_ERR_DOMAIN_EMPTY;
    jid_prep r = jid_prep_simple(JID_PART_RESOURCE, resource, len, buf + bare + 1, &n);
    if (r != PREP_OK)
        return jid_err_of(JID_PART_RESOURCE, r);
    memcpy(buf, jid_full(j), bare);
    buf[bare] = '/';
    jid t;
    jid_assign(&t, buf, j->node_len, j->domain_len, n);
    jid_free(j);
    *j = t;
    return JID_OK;
}

void jid_bare(const jid *src, jid *out)
{
    jid t;
    jid_assign(&t, jid_full(src), src->node_len, src->domain_len, 0);
    if (out == src)
        jid_free(out);
    *out = t;
}

void jid_copy(jid *dst, const jid *src)
{
    if (dst != src)
        jid_assign(dst, jid_full(src), src->node_len, src->domain_len, src->resource_len);
}

const char *jid_full(const jid *j)
{
    return jid_full_len(j) > JID_INLINE_MAX ? j->u.heap : j->u.inline_buf;
}

size_t jid_full_len(const jid *j)
{
    return jid_len_of(j->node_len, j->domain_len, j->resource_len);
}

size_t jid_bare_len(const jid *j)
{
    return jid_len_of(j->node_len, j->domain_len, 0);
}

const char *jid_node(const jid *j, size_t *len)
{
    if (len)
        *len = j->node_len;
    return j->node_len ? jid_full(j) : NULL;
}

const char *jid_domain(const jid *j, size_t *len)
{
    if (len)
        *len = j->domain_len;
    return j->domain_len ? jid_full(j) + j->node_len + (j->node_len > 0) : NULL;
}

const char *jid_resource(const jid *j, size_t *len)
{
    if (len)
        *len = j->resource_len;
    return j->resource_len ? jid_full(j) + jid_bare_len(j) + 1 : NULL;
}

bool jid_is_bare(const jid *j)
{
    return j->resource_len == 0;
}

bool jid_equal_full(const jid *a, const jid *b)
{
    return a->node_len == b->node_len && a->domain_len == b->domain_len &&
           a->resource_len == b->resource_len &&
           memcmp(jid_full(a), jid_full(b), jid_full_len(a)) == 0;
}

bool jid_equal_bare(const jid *a, const jid *b)
{
    return a->node_len == b->node_len && a->domain_len == b->domain_len &&
           memcmp(jid_full(a), jid_full(b), jid_bare_len(a)) == 0;
}

static size_t jid_copy_out(const char *s, size_t len, char *buf, size_t size)
{
    if (size > 0) {
        size_t n = len < size ? len : size - 1;
        memcpy(buf, s, n);
        buf[n] = '\0';
    }
    return len;
}

size_t jid_to_string(const jid *j, char *buf, size_t size)
{
    return jid_copy_out(jid_full(j), jid_full_len(j), buf, size);
}

size_t jid_bare_to_string(const jid *j, char *buf, size_t size)
{
    return jid_copy_out(jid_full(j), jid_bare_len(j), buf, size);
}

const char *jid_strerror(jid_err err)
{
    switch (err) {
    case JID_OK: return "ok";
    case JID_ERR_EMPTY: return "empty address";
    case JID_ERR_UTF8: return "not valid UTF-8";
    case JID_ERR_NODE_EMPTY: return "empty node";
    case JID_ERR_NODE_TOO_LONG: return "node too long";
    case JID_ERR_NODE_PROHIBITED: return "prohibited character in node";
    case JID_ERR_DOMAIN_EMPTY: return "no domain";
    case JID_ERR_DOMAIN_TOO_LONG: return "domain too long";
    case JID_ERR_DOMAIN_PROHIBITED: return "prohibited character in domain";
    case JID_ERR_DOMAIN_INVALID: return "invalid domain";
    case JID_ERR_RESOURCE_EMPTY: return "empty resource";
    case JID_ERR_RESOURCE_TOO_LONG: return "resource too long";
    case JID_ERR_RESOURCE_PROHIBITED: return "prohibited character in resource";
    }
    return "unknown JID error";
}

bool jid_domain_of(const char *s, char *out, size_t size)
{
    jid j;
    if (!s || jid_parse(s, strlen(s), &j) != JID_OK)
        return false;
    size_t n;
    const char *d = jid_domain(&j, &n);
    bool ok = n < size;
    if (ok) {
        memcpy(out, d, n);
        out[n] = '\0';
    }
    jid_free(&j);
    return ok;
}
