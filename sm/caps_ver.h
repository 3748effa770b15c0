/* sm/caps_ver.h — XEP-0115's verification string (§5.1) of a disco#info result, with the checks of
 * §5.4 that come before it: what sm/mod_caps.c verifies an announced 'ver' with, and the fuzz
 * target drives. Pure: no SM, no allocation that outlives the call.
 *
 * The answer is a client's, so it is read within bounds: at most max_items identities, features,
 * form fields and values, at most max_bytes of verification string; walking it is linear in its
 * size and sorting what is kept costs O(n log n) for n <= max_items.
 */
#ifndef JABSHARD_SM_CAPS_VER_H
#define JABSHARD_SM_CAPS_VER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/xml.h"

#define CAPS_NS "http://jabber.org/protocol/caps"
#define CAPS_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
/* A base64 verification string, NUL included: 28 bytes for SHA-1, 44 for SHA-256. */
#define CAPS_VER_MAX 48

typedef enum { CAPS_SHA1, CAPS_SHA256 } caps_hash;

typedef enum {
    CAPS_VER_OK,
    CAPS_VER_TOO_BIG,       /* past max_items or max_bytes */
    CAPS_VER_ILL_FORMED,    /* §5.4: an identity or feature twice, two forms of one FORM_TYPE, a
                             * FORM_TYPE with two values; or an identity without category or
                             * type, a feature without var, a form with two FORM_TYPE fields
                             * or two fields of one var (two without var included) */
} caps_ver_status;

typedef struct caps_ver_limits {
    size_t max_items, max_bytes;
} caps_ver_limits;

/* What caps_ver found: the verification string and the features, sorted (i;octet) and distinct,
 * pointing into the tree (valid while it is). */
typedef struct caps_ver_result {
    char ver[CAPS_VER_MAX];
    const char **features;  /* in scratch */
    size_t nfeatures;
} caps_ver_result;

/* Hash algorithm named by a <c/>'s 'hash' ("sha-1", "sha-256"); false for any other. */
bool caps_hash_parse(const char *name, caps_hash *out);
/* The length of a verification string of h (without the NUL). */
size_t caps_ver_len(caps_hash h);

/* The verification string of query (a disco#info <query/>) under h, and its features; the
 * arrays are made in scratch. Forms whose FORM_TYPE is missing, valueless or not hidden are left
 * out (§5.4). */
caps_ver_status caps_ver(const xml_node *query, caps_hash h, const caps_ver_limits *lim,
                         xml_arena *scratch, caps_ver_result *out);

#endif
