/* core/jid.h — XMPP addresses (JIDs): parsing, normalisation, comparison.
 *
 * Structure as in RFC 7622 §3.1: [ node "@" ] domain [ "/" resource ]. The resource starts at the
 * first '/'; the node is what precedes the first '@' before that '/'. Each part is normalised as
 * RFC 6122 says (as jabberd2, ejabberd and Prosody do), with libidn's stringprep profiles:
 *   node      nodeprep: case-folded, NFKC; space and "&'/:<>@ prohibited
 *   domain    nameprep, label by label; one trailing dot stripped; every label must pass IDNA2003
 *             ToASCII with the STD3 rules (letters, digits, inner hyphens, at most 63 octets);
 *             IPv6 literals ("[::1]") are checked with inet_pton and kept as written, lowercased
 *   resource  resourceprep: NFKC, case kept; may contain '@', '/' and spaces
 * Unassigned code points (Unicode 3.2) are allowed, as stringprep allows them in queries (emoji
 * resources are common). Input must be valid UTF-8. Each part is at most JID_PART_MAX bytes after
 * preparation and at most JID_PART_INPUT_MAX bytes before it (bounds the work per JID). An empty
 * node ("@d") or resource ("d/") is an error; the domain is required. All-ASCII parts take a fast
 * path that gives exactly what stringprep gives (the unit tests check every ASCII character).
 *
 * Representation: a jid is a 64-byte value holding "node@domain/resource" (normalised, NUL-ended)
 * with the three part lengths. Strings up to JID_INLINE_MAX bytes (nearly all real JIDs) live inside
 * the struct, so parsing and copying them allocate nothing; longer ones own one exact-size heap
 * buffer. Because of that buffer a jid is copied with jid_copy, never by assignment, and released
 * with jid_free (a no-op on inline and on zeroed jids). A zeroed jid is "no JID" (empty string).
 *
 * Threads: a jid is a plain value owned by whoever holds it; no function keeps global state, and
 * libidn's stringprep and ToASCII keep none either, so any thread may parse at any time.
 */
#ifndef JABSHARD_CORE_JID_H
#define JABSHARD_CORE_JID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JID_PART_MAX 1023                        /* bytes per part, after preparation */
#define JID_PART_INPUT_MAX (4 * JID_PART_MAX)    /* bytes per part, before preparation */
#define JID_MAX_LEN (3 * JID_PART_MAX + 2)       /* longest "node@domain/resource" */
#define JID_INLINE_MAX 55                        /* longest string stored without allocating */

typedef struct jid {
    union {                          /* private: use the accessors */
        char inline_buf[JID_INLINE_MAX + 1];
        char *heap;                  /* when the string is longer than JID_INLINE_MAX */
    } u;
    uint16_t node_len;               /* 0: no node */
    uint16_t domain_len;             /* 0: no JID at all */
    uint16_t resource_len;           /* 0: bare */
} jid;

typedef enum {
    JID_OK = 0,
    JID_ERR_EMPTY,               /* the input is empty */
    JID_ERR_UTF8,                /* not valid UTF-8 */
    JID_ERR_NODE_EMPTY,          /* "@domain" */
    JID_ERR_NODE_TOO_LONG,
    JID_ERR_NODE_PROHIBITED,     /* nodeprep refused it: prohibited character or bidi rule */
    JID_ERR_DOMAIN_EMPTY,        /* no domain ("n@", "/r", ".") */
    JID_ERR_DOMAIN_TOO_LONG,
    JID_ERR_DOMAIN_PROHIBITED,   /* nameprep refused a label: prohibited character or bidi rule */
    JID_ERR_DOMAIN_INVALID,      /* a label is empty, too long or not LDH; or a bad IP literal */
    JID_ERR_RESOURCE_EMPTY,      /* "domain/" */
    JID_ERR_RESOURCE_TOO_LONG,
    JID_ERR_RESOURCE_PROHIBITED, /* resourceprep refused it: prohibited character or bidi rule */
} jid_err;

/* Parses and normalises s (len bytes, no NUL needed). *out is overwritten, not freed: free a jid
 * before parsing into it again. On error *out is left zeroed. */
jid_err jid_parse(const char *s, size_t len, jid *out);
/* Builds a JID from separate parts, normalising each (the parts are not split on '@' or '/').
 * node or resource NULL means absent; a non-NULL part of length 0 is an error. */
jid_err jid_make(const char *node, size_t node_len, const char *domain, size_t domain_len,
                 const char *resource, size_t resource_len, jid *out);
/* Replaces (or adds) j's resource, normalised; j is unchanged on error (JID_ERR_DOMAIN_EMPTY for
 * a zeroed jid). */
jid_err jid_set_resource(jid *j, const char *resource, size_t len);
/* out = src without its resource; out may be src. out is overwritten (unless it is src). */
void jid_bare(const jid *src, jid *out);
/* dst = an independent copy of src; dst is overwritten, not freed. */
void jid_copy(jid *dst, const jid *src);
/* Releases j's buffer, if any, and zeroes it. */
void jid_free(jid *j);

/* "node@domain/resource", NUL-terminated; "" for a zeroed jid. Valid until j changes. */
const char *jid_full(const jid *j);
size_t jid_full_len(const jid *j);
/* The bare JID "node@domain" is the first jid_bare_len() bytes of jid_full(). */
size_t jid_bare_len(const jid *j);
/* Parts as pointer and length (not NUL-terminated, except the resource); NULL when absent. */
const char *jid_node(const jid *j, size_t *len);
const char *jid_domain(const jid *j, size_t *len);
/* The normalized domain of the JID text s into out (NUL-terminated); false when s is NULL, not a
 * JID, or its domain does not fit in size. */
bool jid_domain_of(const char *s, char *out, size_t size);
const char *jid_resource(const jid *j, size_t *len);
bool jid_is_bare(const jid *j);

/* Comparisons of normalised forms: byte equality of the full or bare JID. */
bool jid_equal_full(const jid *a, const jid *b);
bool jid_equal_bare(const jid *a, const jid *b);

/* Like snprintf: writes at most size - 1 bytes and a NUL (when size > 0) and returns the length
 * of the whole string, so a result >= size means it was cut. JID_MAX_LEN + 1 always suffices. */
size_t jid_to_string(const jid *j, char *buf, size_t size);
size_t jid_bare_to_string(const jid *j, char *buf, size_t size);

/* A short English description of err ("node too long", ...). */
const char *jid_strerror(jid_err err);

#endif
