/* tests/unit/test_s2s_tls.c — s2s/s2s_tls.c: real handshakes over socketpairs between the
 * connecting and the accepting context, with a CA made here signing certificates for a.test and
 * b.test. The verdict both ways (trusted and named; unknown issuer; self-signed; another domain;
 * no client certificate), SNI, TLS 1.2 and 1.3, reload, and errors naming their file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "s2s/s2s_tls.h"
#include "tests/support/tmp.h"

static char *dir;

static char *in_dir(const char *name)
{
    static char paths[8][PATH_MAX];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", dir, name);
    return p;
}

/* ---- certificates ---------------------------------------------------------------------------- */

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    bool ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for key with subject CN cn, signed by issuer/issuer_key (itself when NULL). */
static X509 *cert_make(EVP_PKEY *key, const char *cn, const char *san, bool ca, X509 *issuer,
                       EVP_PKEY *issuer_key)
{
    static long serial = 1;
    X509 *cert = X509_new();
    assert_non_null(cert);
    assert_true(X509_set_version(cert, X509_VERSION_3));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++));
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 86400));
    assert_true(X509_set_pubkey(cert, key));
    X509_NAME *name = X509_get_subject_name(cert);
    assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                                           -1, -1, 0));
    X509 *signer = issuer ? issuer : cert;
    assert_true(X509_set_issuer_name(cert, X509_get_subject_name(signer)));
    if (ca) {
        assert_true(add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE"));
        assert_true(add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
        assert_true(add_ext(cert, signer, NID_subject_key_identifier, "hash"));
    } else {
        assert_true(add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE"));
        assert_true(add_ext(cert, signer, NID_key_usage, "critical,digitalSignature"));
        assert_true(add_ext(cert, signer, NID_ext_key_usage, "serverAuth,clientAuth"));
        assert_true(add_ext(cert, signer, NID_subject_alt_name, san));
        assert_true(add_ext(cert, signer, NID_authority_key_identifier, "keyid"));
    }
    assert_true(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return cert;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(PEM_write_X509(f, cert));
    if (key)
        assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    dir = tmp_dir("test_s2s_tls");
    if (!dir || log_open("test_s2s_tls", LOG_TO_FILE, in_dir("tls.log"), LL_INFO) < 0)
        return -1;
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *a_key = EVP_EC_gen("P-256");
    EVP_PKEY *b_key = EVP_RSA_gen(2048);    /* an RSA peer too */
    X509 *ca = cert_make(ca_key, "jabshard test CA", NULL, true, NULL, NULL);
    X509 *a = cert_make(a_key, "a.test", "DNS:a.test", false, ca, ca_key);
    X509 *b = cert_make(b_key, "b.test", "DNS:b.test,DNS:*.b.test", false, ca, ca_key);
    write_pem(in_dir("ca.pem"), ca, NULL);
    write_pem(in_dir("a.pem"), a, a_key);
    write_pem(in_dir("b.pem"), b, b_key);
    X509_free(ca);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(a_key);
    EVP_PKEY_free(b_key);
    return 0;
}

static int teardown(void **state)
{
    log_open("test_s2s_tls", LOG_TO_STDERR, NULL, LL_INFO);
    tmp_dir_remove(dir);
    return 0;
}

/* ---- connections --------------------------------------------------------------------------- */

typedef struct conn {
    int fd[2];
    SSL *acc, *con;    /* accepting (fd[0]) and connecting (fd[1]) sides */
} conn;

static s2s_tls *tls_new(const char *cert, const char *cafile)
{
    tls_error err = { "" };
    const char *const hosts[] = { "a.test", NULL };
    s2s_tls *t = s2s_tls_new(cert, NULL, cafile, NULL, hosts, &err);
    if (!t)
        fail_msg("s2s_tls_new: %s", err.text);
    return t;
}

/* Runs both handshakes, one non-blocking step each in turn, until both finish. */
static void handshake(conn *c)
{
    tls_status sa = TLS_WANT_READ, sc = TLS_WANT_READ;
    for (int i = 0; i < 200 && (sa != TLS_OK || sc != TLS_OK); i++) {
        if (sc != TLS_OK)
            sc = tls_handshake(c->con);
        if (sa != TLS_OK)
            sa = tls_handshake(c->acc);
        assert_int_not_equal(sa, TLS_FAILED);
        assert_int_not_equal(sc, TLS_FAILED);
    }
    assert_int_equal(sa, TLS_OK);
    assert_int_equal(sc, TLS_OK);
    assert_true(SSL_version(c->acc) >= TLS1_2_VERSION);
}

/* A connection from client (as connecting side, to remote) to server; handshake done. */
static void conn_open(conn *c, s2s_tls *server, s2s_tls *client, const char *remote,
                      int max_version)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c->fd), 0);
    c->acc = s2s_tls_accept_ssl(server, c->fd[0]);
    c->con = s2s_tls_connect_ssl(client, c->fd[1], remote);
    assert_non_null(c->acc);
    assert_non_null(c->con);
    if (max_version)
        assert_int_equal(SSL_set_max_proto_version(c->con, max_version), 1);
    handshake(c);
}

static void conn_close(conn *c)
{
    SSL_free(c->acc);
    SSL_free(c->con);
    close(c->fd[0]);
    close(c->fd[1]);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_valid_both_ways(void **state)
{
    s2s_tls *a = tls_new(in_dir("a.pem"), in_dir("ca.pem"));
    s2s_tls *b = tls_new(in_dir("b.pem"), in_dir("ca.pem"));
    const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };
    for (size_t i = 0; i < 2; i++) {
        conn c;
        conn_open(&c, a, b, "a.test", versions[i]);     /* b.test connects to a.test */
        assert_int_equal(SSL_version(c.acc), versions[i]);
        assert_string_equal(SSL_get_servername(c.acc, TLSEXT_NAMETYPE_host_name), "a.test");
        char why[128] = "";
        assert_true(s2s_tls_peer_valid_for(c.con, "a.test", why, sizeof(why)));
        assert_false(s2s_tls_peer_valid_for(c.con, "b.test", why, sizeof(why)));
        assert_string_equal(why, "certificate does not name b.test");
        /* The accepting side saw the connecting side's certificate, wildcard included. */
        assert_true(s2s_tls_peer_valid_for(c.acc, "b.test", why, sizeof(why)));
        assert_true(s2s_tls_peer_valid_for(c.acc, "x.b.test", NULL, 0));
        assert_false(s2s_tls_peer_valid_for(c.acc, "a.test", why, sizeof(why)));
        assert_false(s2s_tls_peer_valid_for(c.acc, "y.x.b.test", NULL, 0));
        conn_close(&c);
    }
    s2s_tls_free(a);
    s2s_tls_free(b);
}

static void test_untrusted(void **state)
{
    char why[128] = "";
    /* Without the CA the chain does not verify, either way. */
    s2s_tls *a = tls_new(in_dir("a.pem"), NULL);
    s2s_tls *b = tls_new(in_dir("b.pem"), NULL);
    conn c;
    conn_open(&c, a, b, "a.test", 0);
    assert_false(s2s_tls_peer_valid_for(c.con, "a.test", why, sizeof(why)));
    assert_non_null(strstr(why, "certificate verify failed: "));
    assert_string_equal(why, "certificate verify failed: unable to get local issuer certificate");
    assert_false(s2s_tls_peer_valid_for(c.acc, "b.test", why, sizeof(why)));
    assert_non_null(strstr(why, "certificate verify failed: "));
    conn_close(&c);
    s2s_tls_free(b);

    /* A generated self-signed certificate for a.test, against a peer that trusts our CA. */
    s2s_tls *self = tls_new(NULL, in_dir("ca.pem"));
    b = tls_new(in_dir("b.pem"), in_dir("ca.pem"));
    conn_open(&c, self, b, "a.test", 0);
    assert_false(s2s_tls_peer_valid_for(c.con, "a.test", why, sizeof(why)));
    assert_string_equal(why, "certificate verify failed: self-signed certificate");
    assert_true(s2s_tls_peer_valid_for(c.acc, "b.test", why, sizeof(why)));
    conn_close(&c);
    /* The other way: the self-signed side connects, and presents the same certificate. */
    conn_open(&c, b, self, "b.test", 0);
    assert_true(s2s_tls_peer_valid_for(c.con, "b.test", why, sizeof(why)));
    assert_false(s2s_tls_peer_valid_for(c.acc, "a.test", why, sizeof(why)));
    assert_string_equal(why, "certificate verify failed: self-signed certificate");
    conn_close(&c);
    s2s_tls_free(self);
    s2s_tls_free(b);
    s2s_tls_free(a);
}

static void test_no_client_certificate(void **state)
{
    s2s_tls *a = tls_new(in_dir("a.pem"), in_dir("ca.pem"));
    conn c;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c.fd), 0);
    SSL_CTX *plain = SSL_CTX_new(TLS_client_method());
    assert_non_null(plain);
    c.acc = s2s_tls_accept_ssl(a, c.fd[0]);
    c.con = SSL_new(plain);
    assert_non_null(c.con);
    assert_int_equal(SSL_set_fd(c.con, c.fd[1]), 1);
    SSL_set_connect_state(c.con);
    handshake(&c);      /* a peer without a certificate is let in: dialback decides */
    char why[128];
    assert_false(s2s_tls_peer_valid_for(c.acc, "b.test", why, sizeof(why)));
    assert_string_equal(why, "no certificate");
    conn_close(&c);
    SSL_CTX_free(plain);
    s2s_tls_free(a);
}

static void test_sni_and_literals(void **state)
{
    s2s_tls *a = tls_new(in_dir("a.pem"), in_dir("ca.pem"));
    conn c;
    conn_open(&c, a, a, "192.0.2.1", 0);
    assert_null(SSL_get_servername(c.acc, TLSEXT_NAMETYPE_host_name));
    conn_close(&c);
    conn_open(&c, a, a, "[2001:db8::1]", 0);
    assert_null(SSL_get_servername(c.acc, TLSEXT_NAMETYPE_host_name));
    conn_close(&c);
    s2s_tls_free(a);
}

static void test_reload(void **state)
{
    /* The certificate file is replaced: new connections get the new one. */
    char *path = in_dir("current.pem");
    assert_int_equal(link(in_dir("a.pem"), path), 0);
    s2s_tls *srv = tls_new(path, in_dir("ca.pem"));
    s2s_tls *cli = tls_new(in_dir("b.pem"), in_dir("ca.pem"));
    conn old;
    conn_open(&old, srv, cli, "a.test", 0);
    assert_true(s2s_tls_peer_valid_for(old.con, "a.test", NULL, 0));

    assert_int_equal(unlink(path), 0);
    assert_int_equal(link(in_dir("b.pem"), path), 0);
    tls_error err = { "" };
    assert_int_equal(s2s_tls_reload(srv, &err), 0);
    conn c;
    conn_open(&c, srv, cli, "b.test", 0);
    assert_true(s2s_tls_peer_valid_for(c.con, "b.test", NULL, 0));
    assert_false(s2s_tls_peer_valid_for(c.con, "a.test", NULL, 0));
    conn_close(&c);
    /* The connection made before the reload still works. */
    size_t n;
    assert_int_equal(tls_write(old.con, "ping", 4, &n), TLS_OK);
    char buf[8];
    assert_int_equal(tls_read(old.acc, buf, sizeof(buf), &n), TLS_OK);
    assert_int_equal(n, 4);
    conn_close(&old);

    /* A broken file: the reload fails, naming it, and the current contexts stay. */
    assert_int_equal(unlink(path), 0);
    char *broken = tmp_write(dir, "current.pem", "not a certificate\n");
    assert_non_null(broken);
    free(broken);
    assert_int_equal(s2s_tls_reload(srv, &err), -1);
    assert_non_null(strstr(err.text, "current.pem"));
    conn_open(&c, srv, cli, "b.test", 0);
    assert_true(s2s_tls_peer_valid_for(c.con, "b.test", NULL, 0));
    conn_close(&c);

    /* A generated certificate is kept across reloads. */
    s2s_tls *self = tls_new(NULL, NULL);
    conn_open(&c, self, cli, "a.test", 0);
    X509 *before = SSL_get1_peer_certificate(c.con);
    conn_close(&c);
    assert_int_equal(s2s_tls_reload(self, &err), 0);
    conn_open(&c, self, cli, "a.test", 0);
    assert_int_equal(X509_cmp(before, SSL_get0_peer_certificate(c.con)), 0);
    conn_close(&c);
    X509_free(before);
    s2s_tls_free(self);
    s2s_tls_free(srv);
    s2s_tls_free(cli);
}

static void test_errors(void **state)
{
    tls_error err = { "" };
    assert_null(s2s_tls_new(in_dir("missing.pem"), NULL, NULL, NULL, NULL, &err));
    assert_non_null(strstr(err.text, "missing.pem"));
    assert_null(s2s_tls_new(in_dir("a.pem"), NULL, in_dir("no-ca.pem"), NULL, NULL, &err));
    assert_non_null(strstr(err.text, "no-ca.pem"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_both_ways),
        cmocka_unit_test(test_untrusted),
        cmocka_unit_test(test_no_client_certificate),
        cmocka_unit_test(test_sni_and_literals),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
