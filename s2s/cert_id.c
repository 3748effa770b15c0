/* s2s/cert_id.c — RFC 6125 identity checks of a server certificate for an XMPP domain (cert_id.h).
 * Every presented value is taken as (bytes, length) from its ASN1_STRING after a type check, and
 * refused if it holds a NUL; nothing here relies on OpenSSL's NUL termination. */
#include "s2s/cert_id.h"

#include <stddef.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#define DOMAIN_MAX 253

static const char srv_xmpp[] = "_xmpp-server.";
static const char srv_xmpps[] = "_xmpps-server.";

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool same_ascii(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

/* The bytes of s when it has type `type`, no NUL and at most max bytes. */
static const unsigned char *string_bytes(const ASN1_STRING *s, int type, size_t max, size_t *len)
{
    if (!s || ASN1_STRING_type(s) != type)
        return NULL;
    int n = ASN1_STRING_length(s);
    const unsigned char *p = ASN1_STRING_get0_data(s);
    if (!p || n <= 0 || (size_t)n > max || memchr(p, 0, (size_t)n))
        return NULL;
    *len = (size_t)n;
    return p;
}

/* A DNS-ID or CN-ID (p, n) against the domain (d, dlen), with the wildcard rule of cert_id.h. */
static bool dns_id_matches(const unsigned char *p, size_t n, const char *domain, size_t dlen)
{
    const unsigned char *d = (const unsigned char *)domain;
    if (n > 1 && p[n - 1] == '.')
        n--;
    if (!memchr(p, '*', n))
        return n == dlen && same_ascii(p, d, n);
    /* "*." then at least two labels, and no other '*'. */
    if (n < 4 || p[0] != '*' || p[1] != '.' || memchr(p + 1, '*', n - 1) ||
        !memchr(p + 2, '.', n - 2) || p[2] == '.' || p[n - 1] == '.')
        return false;
    const unsigned char *dot = memchr(d, '.', dlen);
    if (!dot || dot == d)
        return false;                              /* the wildcard needs one non-empty label */
    size_t rest = dlen - (size_t)(dot - d);        /* ".example.com" on both sides */
    return rest == n - 1 && same_ascii(p + 1, dot, rest);
}

/* An SRV-ID's IA5String: "_xmpp-server.DOMAIN" or "_xmpps-server.DOMAIN". */
static bool srv_id_matches(const unsigned char *p, size_t n, const char *domain, size_t dlen)
{
    const char *const prefixes[] = { srv_xmpp, srv_xmpps };
    for (size_t i = 0; i < 2; i++) {
        size_t pl = strlen(prefixes[i]);
        if (n == pl + dlen && same_ascii(p, (const unsigned char *)prefixes[i], pl) &&
            same_ascii(p + pl, (const unsigned char *)domain, dlen))
            return true;
    }
    return false;
}

/* One subjectAltName entry. *counts is set when the entry is of a kind that rules out the CN. */
static bool general_name_matches(const GENERAL_NAME *gen, const char *domain, size_t dlen,
                                 bool *counts)
{
    const unsigned char *p;
    size_t n;
    switch (gen->type) {
    case GEN_DNS:
        *counts = true;
        p = string_bytes(gen->d.dNSName, V_ASN1_IA5STRING, DOMAIN_MAX + 1, &n);
        return p && dns_id_matches(p, n, domain, dlen);
    case GEN_URI:
        *counts = true;
        return false;
    case GEN_OTHERNAME: {
        const OTHERNAME *on = gen->d.otherName;
        int nid = on && on->type_id ? OBJ_obj2nid(on->type_id) : NID_undef;
        const ASN1_TYPE *v = on ? on->value : NULL;
        if (nid == NID_SRVName) {
            *counts = true;
            p = v && v->type == V_ASN1_IA5STRING
                    ? string_bytes(v->value.ia5string, V_ASN1_IA5STRING, DOMAIN_MAX + 16, &n)
                    : NULL;
            return p && srv_id_matches(p, n, domain, dlen);
        }
        if (nid == NID_XmppAddr) {
            *counts = true;
            p = v && v->type == V_ASN1_UTF8STRING
                    ? string_bytes(v->value.utf8string, V_ASN1_UTF8STRING, DOMAIN_MAX, &n)
                    : NULL;
            return p && n == dlen && same_ascii(p, (const unsigned char *)domain, n);
        }
        return false;
    }
    default:
        return false;
    }
}

static bool cn_matches(X509 *cert, const char *domain, size_t dlen)
{
    const X509_NAME *subject = X509_get_subject_name(cert);
    int i = -1;
    while (subject && (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0) {
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        unsigned char *utf8 = NULL;
        int n = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
        bool ok = n > 0 && (size_t)n <= DOMAIN_MAX + 1 && !memchr(utf8, 0, (size_t)n) &&
                  dns_id_matches(utf8, (size_t)n, domain, dlen);
        OPENSSL_free(utf8);
        if (ok)
            return true;
    }
    return false;
}

bool s2s_cert_names_domain(X509 *cert, const char *domain)
{
    if (!cert || !domain)
        return false;
    size_t dlen = strnlen(domain, DOMAIN_MAX + 1);
    if (dlen == 0 || dlen > DOMAIN_MAX || strchr(domain, '*'))
        return false;
    int crit = -1;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    if (!gens && crit != -1)
        return false;           /* two subjectAltName extensions (-2), or one that does not parse */
    bool match = false, has_id = false;
    for (int i = 0; gens && !match && i < sk_GENERAL_NAME_num(gens); i++)
        match = general_name_matches(sk_GENERAL_NAME_value(gens, i), domain, dlen, &has_id);
    GENERAL_NAMES_free(gens);
    if (match)
        return true;
    return !has_id && cn_matches(cert, domain, dlen);
}
