/* tests/unit/test_s2s_cert_id.c — s2s/cert_id.c on certificates built here with OpenSSL's API:
 * DNS-IDs and wildcards, SRV-IDs (ours and other services'), XmppAddr, the CN only without
 * identifiers in the subjectAltName, case, and hostile encodings (wrong ASN.1 types, NUL bytes,
 * two subjectAltName extensions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "s2s/cert_id.h"

static EVP_PKEY *key;

static int setup(void **state)
{
    key = EVP_EC_gen("P-256");
    return key ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(key);
    return 0;
}

/* A signed certificate with subject CN cn (none when NULL) and names as its subjectAltName (none
 * when NULL). Takes names. */
static X509 *cert_new(const char *cn, GENERAL_NAMES *names)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    assert_true(X509_set_version(cert, X509_VERSION_3));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(cert), 1));
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 3600));
    X509_NAME *name = X509_get_subject_name(cert);
    if (cn)
        assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                               (const unsigned char *)cn, -1, -1, 0));
    else
        assert_true(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                               (const unsigned char *)"jabshard", -1, -1, 0));
    assert_true(X509_set_issuer_name(cert, name));
    assert_true(X509_set_pubkey(cert, key));
    if (names) {
        assert_int_equal(X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0,
                                           X509V3_ADD_DEFAULT), 1);
        GENERAL_NAMES_free(names);
    }
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    return cert;
}

static GENERAL_NAMES *names_new(void)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    assert_non_null(names);
    return names;
}

/* An ASN1_STRING of type with len bytes of value (len -1: strlen). */
static ASN1_STRING *string_new(int type, const char *value, int len)
{
    ASN1_STRING *s = ASN1_STRING_type_new(type);
    assert_non_null(s);
    assert_true(ASN1_STRING_set(s, value, len));
    return s;
}

static void push(GENERAL_NAMES *names, GENERAL_NAME *gen)
{
    assert_true(sk_GENERAL_NAME_push(names, gen) > 0);
}

static GENERAL_NAMES *dns(GENERAL_NAMES *names, const char *value, int len)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    assert_non_null(gen);
    GENERAL_NAME_set0_value(gen, GEN_DNS, string_new(V_ASN1_IA5STRING, value, len));
    push(names, gen);
    return names;
}

static GENERAL_NAMES *uri(GENERAL_NAMES *names, const char *value)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    assert_non_null(gen);
    GENERAL_NAME_set0_value(gen, GEN_URI, string_new(V_ASN1_IA5STRING, value, -1));
    push(names, gen);
    return names;
}

/* An otherName of OID nid holding a string of ASN.1 type `type`. */
static GENERAL_NAMES *other(GENERAL_NAMES *names, int nid, int type, const char *value, int len)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_TYPE *v = ASN1_TYPE_new();
    assert_non_null(gen);
    assert_non_null(v);
    ASN1_TYPE_set(v, type, string_new(type, value, len));
    assert_true(GENERAL_NAME_set0_othername(gen, OBJ_nid2obj(nid), v));
    push(names, gen);
    return names;
}

static GENERAL_NAMES *srv_id(GENERAL_NAMES *names, const char *value)
{
    return other(names, NID_SRVName, V_ASN1_IA5STRING, value, -1);
}

static GENERAL_NAMES *xmpp_addr(GENERAL_NAMES *names, const char *value)
{
    return other(names, NID_XmppAddr, V_ASN1_UTF8STRING, value, -1);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_dns_id(void **state)
{
    X509 *c = cert_new(NULL, dns(dns(names_new(), "a.example.org", -1), "B.Example.NET", -1));
    assert_true(s2s_cert_names_domain(c, "a.example.org"));
    assert_true(s2s_cert_names_domain(c, "A.EXAMPLE.org"));
    assert_true(s2s_cert_names_domain(c, "b.example.net"));
    assert_false(s2s_cert_names_domain(c, "example.org"));
    assert_false(s2s_cert_names_domain(c, "x.a.example.org"));
    assert_false(s2s_cert_names_domain(c, "a.example.or"));
    assert_false(s2s_cert_names_domain(c, "a.example.org."));
    assert_false(s2s_cert_names_domain(c, ""));
    assert_false(s2s_cert_names_domain(c, NULL));
    assert_false(s2s_cert_names_domain(NULL, "a.example.org"));
    X509_free(c);

    /* A presented name with a trailing dot. */
    c = cert_new(NULL, dns(names_new(), "dot.example.org.", -1));
    assert_true(s2s_cert_names_domain(c, "dot.example.org"));
    X509_free(c);
}

static void test_wildcards(void **state)
{
    X509 *c = cert_new(NULL, dns(names_new(), "*.example.com", -1));
    assert_true(s2s_cert_names_domain(c, "a.example.com"));
    assert_true(s2s_cert_names_domain(c, "XMPP.Example.Com"));
    assert_true(s2s_cert_names_domain(c, "xn--bcher-kva.example.com"));
    assert_false(s2s_cert_names_domain(c, "a.b.example.com"));    /* one label only */
    assert_false(s2s_cert_names_domain(c, "example.com"));
    assert_false(s2s_cert_names_domain(c, ".example.com"));
    assert_false(s2s_cert_names_domain(c, "a.example.org"));
    assert_false(s2s_cert_names_domain(c, "*.example.com"));      /* the domain has no '*' */
    X509_free(c);

    /* Not the whole left-most label, not left-most, too few labels, two stars. */
    const char *bad[] = { "f*.example.com", "*o.example.com", "a.*.example.com", "*.com", "*",
                          "*.", "**.example.com", "*.*.example.com", "*.example.*" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = cert_new(NULL, dns(names_new(), bad[i], -1));
        assert_false(s2s_cert_names_domain(c, "foo.example.com"));
        assert_false(s2s_cert_names_domain(c, "a.com"));
        assert_false(s2s_cert_names_domain(c, "foo.a.example.com"));
        X509_free(c);
    }
}

static void test_srv_id(void **state)
{
    X509 *c = cert_new(NULL, srv_id(names_new(), "_xmpp-server.example.org"));
    assert_true(s2s_cert_names_domain(c, "example.org"));
    assert_true(s2s_cert_names_domain(c, "EXAMPLE.org"));
    assert_false(s2s_cert_names_domain(c, "xmpp.example.org"));
    assert_false(s2s_cert_names_domain(c, "_xmpp-server.example.org"));
    X509_free(c);

    c = cert_new(NULL, srv_id(names_new(), "_XMPPS-Server.example.org"));
    assert_true(s2s_cert_names_domain(c, "example.org"));
    X509_free(c);

    /* Other services, the client service, and no wildcards in SRV-IDs. */
    const char *others[] = { "_imap.example.org", "_xmpp-client.example.org",
                             "_xmpp-server.*.org", "_xmpp-serverexample.org", "example.org" };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        c = cert_new("example.org", srv_id(names_new(), others[i]));
        assert_false(s2s_cert_names_domain(c, "example.org"));    /* and the CN is not used */
        X509_free(c);
    }
}

static void test_xmpp_addr(void **state)
{
    X509 *c = cert_new(NULL, xmpp_addr(names_new(), "example.org"));
    assert_true(s2s_cert_names_domain(c, "example.org"));
    assert_true(s2s_cert_names_domain(c, "Example.ORG"));
    assert_false(s2s_cert_names_domain(c, "a.example.org"));
    X509_free(c);

    /* A JID with a local part or a resource is not the domain. */
    c = cert_new(NULL, xmpp_addr(xmpp_addr(names_new(), "user@example.org"), "example.org/r"));
    assert_false(s2s_cert_names_domain(c, "example.org"));
    X509_free(c);
}

static void test_common_name(void **state)
{
    /* No subjectAltName: the CN counts, wildcards included. */
    X509 *c = cert_new("cn.example.org", NULL);
    assert_true(s2s_cert_names_domain(c, "cn.example.org"));
    assert_true(s2s_cert_names_domain(c, "CN.example.org"));
    assert_false(s2s_cert_names_domain(c, "other.example.org"));
    X509_free(c);
    c = cert_new("*.example.org", NULL);
    assert_true(s2s_cert_names_domain(c, "w.example.org"));
    assert_false(s2s_cert_names_domain(c, "a.w.example.org"));
    X509_free(c);

    /* Ignored when the subjectAltName has a DNS, URI, SRV or XmppAddr identifier. */
    c = cert_new("cn.example.org", dns(names_new(), "san.example.org", -1));
    assert_false(s2s_cert_names_domain(c, "cn.example.org"));
    assert_true(s2s_cert_names_domain(c, "san.example.org"));
    X509_free(c);
    c = cert_new("cn.example.org", uri(names_new(), "xmpp:other.example.org"));
    assert_false(s2s_cert_names_domain(c, "cn.example.org"));
    X509_free(c);
    c = cert_new("cn.example.org", xmpp_addr(names_new(), "other.example.org"));
    assert_false(s2s_cert_names_domain(c, "cn.example.org"));
    X509_free(c);

    /* Still used beside an email address (not an identifier of a server). */
    GENERAL_NAMES *names = names_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(gen, GEN_EMAIL, string_new(V_ASN1_IA5STRING, "a@b.example", -1));
    push(names, gen);
    c = cert_new("cn.example.org", names);
    assert_true(s2s_cert_names_domain(c, "cn.example.org"));
    X509_free(c);
}

static void test_hostile_encodings(void **state)
{
    /* A NUL inside a dNSName, an SRV-ID, a CN. */
    static const char nul_dns[] = "a.example.org\0.evil.net";
    X509 *c = cert_new(NULL, dns(names_new(), nul_dns, (int)sizeof(nul_dns) - 1));
    assert_false(s2s_cert_names_domain(c, "a.example.org"));
    assert_false(s2s_cert_names_domain(c, "evil.net"));
    X509_free(c);
    static const char nul_srv[] = "_xmpp-server.example.org\0x";
    c = cert_new(NULL, other(names_new(), NID_SRVName, V_ASN1_IA5STRING, nul_srv,
                             (int)sizeof(nul_srv) - 1));
    assert_false(s2s_cert_names_domain(c, "example.org"));
    X509_free(c);

    /* Wrong ASN.1 types: an SRV-ID as a UTF8String, an XmppAddr as an IA5String. They name
     * nothing, and still rule out the CN. */
    c = cert_new("example.org", other(names_new(), NID_SRVName, V_ASN1_UTF8STRING,
                                      "_xmpp-server.example.org", -1));
    assert_false(s2s_cert_names_domain(c, "example.org"));
    X509_free(c);
    c = cert_new("example.org", other(names_new(), NID_XmppAddr, V_ASN1_IA5STRING,
                                      "example.org", -1));
    assert_false(s2s_cert_names_domain(c, "example.org"));
    X509_free(c);
    c = cert_new(NULL, other(names_new(), NID_XmppAddr, V_ASN1_OCTET_STRING, "example.org", -1));
    assert_false(s2s_cert_names_domain(c, "example.org"));
    X509_free(c);

    /* An unknown otherName is neither a match nor an identifier: the CN counts. */
    c = cert_new("example.org", other(names_new(), NID_ms_upn, V_ASN1_UTF8STRING,
                                      "example.org", -1));
    assert_true(s2s_cert_names_domain(c, "example.org"));
    X509_free(c);

    /* Two subjectAltName extensions: nothing is trusted. */
    c = cert_new(NULL, dns(names_new(), "a.example.org", -1));
    GENERAL_NAMES *second = dns(names_new(), "b.example.org", -1);
    assert_int_equal(X509_add1_ext_i2d(c, NID_subject_alt_name, second, 0, X509V3_ADD_APPEND), 1);
    GENERAL_NAMES_free(second);
    assert_false(s2s_cert_names_domain(c, "a.example.org"));
    assert_false(s2s_cert_names_domain(c, "b.example.org"));
    X509_free(c);

    /* A very long domain and names. */
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    c = cert_new(NULL, dns(names_new(), longname, -1));
    assert_false(s2s_cert_names_domain(c, longname));
    X509_free(c);
}

static void test_mixed(void **state)
{
    /* Several identifiers: any one matching is enough. */
    GENERAL_NAMES *names = dns(names_new(), "www.example.org", -1);
    srv_id(names, "_imap.example.org");
    srv_id(names, "_xmpp-server.chat.example.org");
    xmpp_addr(names, "muc.example.org");
    dns(names, "*.users.example.org", -1);
    X509 *c = cert_new("cn.example.org", names);
    assert_true(s2s_cert_names_domain(c, "www.example.org"));
    assert_true(s2s_cert_names_domain(c, "chat.example.org"));
    assert_true(s2s_cert_names_domain(c, "muc.example.org"));
    assert_true(s2s_cert_names_domain(c, "x.users.example.org"));
    assert_false(s2s_cert_names_domain(c, "example.org"));
    assert_false(s2s_cert_names_domain(c, "cn.example.org"));
    X509_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_id),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_srv_id),
        cmocka_unit_test(test_xmpp_addr),
        cmocka_unit_test(test_common_name),
        cmocka_unit_test(test_hostile_encodings),
        cmocka_unit_test(test_mixed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
