/* tests/unit/test_tls.c — core/tls: real handshakes over socketpairs against a client SSL_CTX
 * made here. The generated certificate and its names, the protocol and cipher policy, PEM files
 * (combined, either order, separate, chained, broken), reload while connections are open, the
 * non-blocking steps, close_notify and the tls-exporter channel binding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/tls.h"
#include "tests/support/tmp.h"

static char *dir;

/* dir/name, in one of 8 buffers used in turn: a test holds a few paths at once, never frees. */
static char *in_dir(const char *name)
{
    static char paths[8][PATH_MAX];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", dir, name);
    return p;
}

static int setup(void **state)
{
    dir = tmp_dir("test_tls");
    if (!dir)
        return -1;
    return log_open("test_tls", LOG_TO_FILE, in_dir("tls.log"), LL_INFO);
}

static int teardown(void **state)
{
    log_open("test_tls", LOG_TO_STDERR, NULL, LL_INFO);
    tmp_dir_remove(dir);
    return 0;
}

/* ---- a connection: server SSL from core/tls, client SSL from a test context ---------------- */

typedef struct conn {
    int fd[2];
    SSL *server, *client;
} conn;

static SSL_CTX *client_ctx(int min_version, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, min_version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    return ctx;
}

static void conn_open_ssl(conn *c, SSL *server, SSL_CTX *cctx)
{
    c->server = server;
    assert_non_null(c->server);
    c->client = SSL_new(cctx);
    assert_non_null(c->client);
    assert_int_equal(SSL_set_fd(c->client, c->fd[1]), 1);
    SSL_set_connect_state(c->client);
    SSL_set_tlsext_host_name(c->client, "example.com");
}

static void conn_sockets(conn *c)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c->fd), 0);
}

static void conn_open(conn *c, SSL_CTX *sctx, SSL_CTX *cctx)
{
    conn_sockets(c);
    SSL *s = SSL_new(sctx);
    assert_non_null(s);
    assert_int_equal(SSL_set_fd(s, c->fd[0]), 1);
    SSL_set_accept_state(s);
    conn_open_ssl(c, s, cctx);
}

static void conn_close(conn *c)
{
    SSL_free(c->server);
    SSL_free(c->client);
    close(c->fd[0]);
    close(c->fd[1]);
}

/* Runs both handshakes to their end, one step each in turn, as an event loop would. Returns the
 * server's final status; *client_ok says whether the client finished. */
static tls_status handshake(conn *c, bool *client_ok)
{
    tls_status s = TLS_WANT_READ;
    int cr = 0;
    bool client_done = false, client_failed = false;
    for (int i = 0; i < 100; i++) {
        if (s == TLS_WANT_READ || s == TLS_WANT_WRITE)
            s = tls_handshake(c->server);
        if (!client_done && !client_failed) {
            cr = SSL_do_handshake(c->client);
            if (cr == 1)
                client_done = true;
            else {
                int e = SSL_get_error(c->client, cr);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    client_failed = true;
            }
        }
        if ((s == TLS_OK || s == TLS_FAILED) && (client_done || client_failed))
            break;
    }
    ERR_clear_error();
    if (client_ok)
        *client_ok = client_done;
    return s;
}

static void handshake_ok(conn *c)
{
    bool client_ok;
    tls_status s = handshake(c, &client_ok);
    if (s != TLS_OK) {
        tls_error err;
        tls_last_error(&err);
        fail_msg("server handshake: %d (%s)", s, err.text);
    }
    assert_true(client_ok);
}

/* The DNS names in cert's subjectAltName, comma-separated. */
static void san_names(X509 *cert, char *out, size_t cap)
{
    out[0] = '\0';
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        assert_int_equal(gn->type, GEN_DNS);
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len ? "," : "",
                 (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
    }
    GENERAL_NAMES_free(names);
}

/* The SAN list of the certificate the client received. */
static void peer_names(conn *c, char *out, size_t cap)
{
    X509 *peer = SSL_get1_peer_certificate(c->client);
    assert_non_null(peer);
    san_names(peer, out, cap);
    X509_free(peer);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Splits a combined PEM written by tls_write_self_signed into its certificate and key blocks. */
static void split_pem(const char *path, char **cert, char **key)
{
    char *all = slurp(path);
    char *k = strstr(all, "-----BEGIN PRIVATE KEY-----");
    assert_non_null(k);
    assert_non_null(strstr(all, "-----BEGIN CERTIFICATE-----"));
    assert_true(strstr(all, "-----BEGIN CERTIFICATE-----") < k);
    *key = strdup(k);
    *k = '\0';
    *cert = all;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_generated_certificate(void **state)
{
    tls_error err;
    static const char *const hosts[] = { "example.com", "conference.example.com", NULL };
    SSL_CTX *sctx = tls_server_ctx_new(NULL, NULL, hosts, &err);
    assert_non_null(sctx);
    char *log = slurp(in_dir("tls.log"));
    assert_non_null(strstr(log, " warn: tls: no certificate configured; using a self-signed "
                                "certificate for example.com, conference.example.com,"));
    free(log);

    X509 *cert = SSL_CTX_get0_certificate(sctx);
    assert_non_null(cert);
    char names[256];
    san_names(cert, names, sizeof(names));
    assert_string_equal(names, "example.com,conference.example.com");
    assert_int_equal(X509_check_host(cert, "conference.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(cert, "other.example.com", 0, 0, NULL), 0);

    /* ECDSA P-256, self-signed with SHA-256, valid from an hour ago for a year. */
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
    char group[64];
    size_t glen;
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_verify(cert, pub), 1);
    assert_int_equal(X509_self_signed(cert, 1), 1);
    int days, secs;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert),
                                    X509_get0_notAfter(cert)), 1);
    assert_int_equal(days, 365);
    assert_int_equal(secs, 3600);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(cert)) < 0);
    assert_true(X509_cmp_current_time(X509_get0_notAfter(cert)) > 0);
    assert_int_equal(X509_check_ca(cert), 0);
    assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);

    /* A client that trusts this certificate verifies it for both names, not for a third. */
    static const struct { const char *host; bool ok; } checks[] = {
        { "example.com", true }, { "conference.example.com", true }, { "evil.example", false },
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
        assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert), 1);
        SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
        conn c;
        conn_open(&c, sctx, cctx);
        assert_int_equal(SSL_set1_host(c.client, checks[i].host), 1);
        bool client_ok;
        handshake(&c, &client_ok);
        assert_int_equal(client_ok, checks[i].ok);
        if (client_ok) {
            assert_int_equal(SSL_get_verify_result(c.client), X509_V_OK);
            peer_names(&c, names, sizeof(names));
            assert_string_equal(names, "example.com,conference.example.com");
        }
        conn_close(&c);
        SSL_CTX_free(cctx);
    }

    /* Two contexts, two different keys and serials. */
    SSL_CTX *other = tls_server_ctx_new(NULL, NULL, NULL, &err);
    assert_non_null(other);
    X509 *cert2 = SSL_CTX_get0_certificate(other);
    san_names(cert2, names, sizeof(names));
    assert_string_equal(names, "localhost");
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), X509_get0_serialNumber(cert2)), 0);
    assert_int_not_equal(EVP_PKEY_eq(pub, X509_get0_pubkey(cert2)), 1);
    SSL_CTX_free(other);
    SSL_CTX_free(sctx);

    /* A host name that is not ASCII cannot go in a dNSName. */
    static const char *const unicode[] = { "b\xc3\xbc" "cher.example", NULL };
    assert_null(tls_server_ctx_new(NULL, NULL, unicode, &err));
    assert_non_null(strstr(err.text, "not ASCII"));
}

static void test_policy(void **state)
{
    tls_error err;
    SSL_CTX *sctx = tls_server_ctx_new(NULL, NULL, NULL, &err);
    assert_non_null(sctx);
    uint64_t opts = SSL_CTX_get_options(sctx);
    assert_true(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
    assert_true(opts & SSL_OP_NO_COMPRESSION);
    assert_true(opts & SSL_OP_NO_RENEGOTIATION);
    long mode = SSL_CTX_get_mode(sctx);
    long want = SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    assert_int_equal(mode & want, want);
    assert_int_equal(SSL_CTX_get_min_proto_version(sctx), TLS1_2_VERSION);

    /* Default client: TLS 1.3. */
    SSL_CTX *cctx = client_ctx(0, 0);
    conn c;
    conn_open(&c, sctx, cctx);
    handshake_ok(&c);
    assert_int_equal(SSL_version(c.server), TLS1_3_VERSION);
    assert_null(SSL_get_current_compression(c.server));
    conn_close(&c);
    SSL_CTX_free(cctx);

    /* TLS 1.2 client: ECDHE with an AEAD, the server's first choice. */
    cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    conn_open(&c, sctx, cctx);
    handshake_ok(&c);
    assert_int_equal(SSL_version(c.server), TLS1_2_VERSION);
    assert_string_equal(SSL_get_cipher_name(c.server), "ECDHE-ECDSA-AES128-GCM-SHA256");
    conn_close(&c);
    SSL_CTX_free(cctx);

    /* The client prefers ChaCha20: the server's order still wins. */
    cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                                   "ECDHE-ECDSA-AES256-GCM-SHA384"), 1);
    conn_open(&c, sctx, cctx);
    handshake_ok(&c);
    assert_string_equal(SSL_get_cipher_name(c.server), "ECDHE-ECDSA-AES256-GCM-SHA384");
    conn_close(&c);
    SSL_CTX_free(cctx);

    /* ... and ChaCha20 alone is accepted. */
    cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
    conn_open(&c, sctx, cctx);
    handshake_ok(&c);
    assert_string_equal(SSL_get_cipher_name(c.server), "ECDHE-ECDSA-CHACHA20-POLY1305");
    conn_close(&c);
    SSL_CTX_free(cctx);

    /* A TLS 1.2 client offering only CBC suites finds nothing in common. */
    cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256"), 1);
    conn_open(&c, sctx, cctx);
    bool client_ok;
    assert_int_equal(handshake(&c, &client_ok), TLS_FAILED);
    assert_false(client_ok);
    tls_last_error(&err);
    assert_string_equal(err.text, "no shared cipher");
    conn_close(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void test_old_protocols_refused(void **state)
{
    tls_error err;
    SSL_CTX *sctx = tls_server_ctx_new(NULL, NULL, NULL, &err);
    assert_non_null(sctx);
    static const int versions[] = { TLS1_1_VERSION, TLS1_VERSION };
    for (size_t i = 0; i < 2; i++) {
        /* OpenSSL 3 itself allows these only at security level 0. */
        SSL_CTX *cctx = client_ctx(versions[i], versions[i]);
        SSL_CTX_set_security_level(cctx, 0);
        assert_int_equal(SSL_CTX_set_cipher_list(cctx, "ALL:@SECLEVEL=0"), 1);
        conn c;
        conn_open(&c, sctx, cctx);
        bool client_ok;
        /* The refusal is the server's: it read the ClientHello and named the protocol. */
        assert_int_equal(handshake(&c, &client_ok), TLS_FAILED);
        assert_false(client_ok);
        tls_last_error(&err);
        assert_string_equal(err.text, "unsupported protocol");
        conn_close(&c);
        SSL_CTX_free(cctx);
    }
    SSL_CTX_free(sctx);
}

static void test_pem_files(void **state)
{
    tls_error err;
    static const char *const hosts[] = { "pem.example", NULL };
    char *both = in_dir("both.pem");
    assert_int_equal(tls_write_self_signed(both, hosts, &err), 0);
    struct stat st;
    assert_int_equal(stat(both, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Written once, never overwritten. */
    char *before = slurp(both);
    assert_int_equal(tls_write_self_signed(both, hosts, &err), -1);
    assert_non_null(strstr(err.text, both));
    assert_non_null(strstr(err.text, "File exists"));
    char *after = slurp(both);
    assert_string_equal(before, after);
    free(before);
    free(after);

    char *cert, *key;
    split_pem(both, &cert, &key);
    char *key_first = in_dir("key-first.pem"), *cert_only = in_dir("cert.pem"),
         *key_only = in_dir("key.pem");
    char buf[16384];
    snprintf(buf, sizeof(buf), "%s%s", key, cert);
    write_text(key_first, buf);
    write_text(cert_only, cert);
    write_text(key_only, key);

    /* The same certificate from the combined file (either order) and from two files. */
    const char *loads[][2] = { { both, NULL }, { key_first, NULL }, { cert_only, key_only } };
    for (size_t i = 0; i < 3; i++) {
        SSL_CTX *sctx = tls_server_ctx_new(loads[i][0], loads[i][1], NULL, &err);
        if (!sctx)
            fail_msg("%s", err.text);
        SSL_CTX *cctx = client_ctx(0, 0);
        conn c;
        conn_open(&c, sctx, cctx);
        handshake_ok(&c);
        char names[128];
        peer_names(&c, names, sizeof(names));
        assert_string_equal(names, "pem.example");
        conn_close(&c);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }

    /* A chain: the leaf, then an intermediate, then the key. */
    char *other = in_dir("other.pem");
    assert_int_equal(tls_write_self_signed(other, NULL, &err), 0);
    char *ocert, *okey;
    split_pem(other, &ocert, &okey);
    char *chained = in_dir("chained.pem");
    snprintf(buf, sizeof(buf), "%s%s%s", cert, ocert, key);
    write_text(chained, buf);
    SSL_CTX *sctx = tls_server_ctx_new(chained, NULL, NULL, &err);
    assert_non_null(sctx);
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(sctx, &chain), 1);
    assert_int_equal(sk_X509_num(chain), 1);
    SSL_CTX_free(sctx);

    free(cert);
    free(key);
    free(ocert);
    free(okey);
}

/* Expects loading to fail with a message that names file and contains what. */
static void expect_load_error(const char *cert, const char *key, const char *file, const char *what)
{
    tls_error err;
    assert_null(tls_server_ctx_new(cert, key, NULL, &err));
    if (!strstr(err.text, file) || !strstr(err.text, what))
        fail_msg("error \"%s\" should name %s and say \"%s\"", err.text, file, what);
    assert_int_equal(ERR_peek_error(), 0);  /* nothing left on the thread's queue */
}

static void test_pem_errors(void **state)
{
    tls_error err;
    char *missing = in_dir("missing.pem");
    expect_load_error(missing, NULL, missing, "No such file or directory");

    char *garbage = in_dir("garbage.pem");
    write_text(garbage, "this is not a certificate\n");
    expect_load_error(garbage, NULL, garbage, "no certificate found");

    char *empty = in_dir("empty.pem");
    write_text(empty, "");
    expect_load_error(empty, NULL, empty, "no certificate found");

    char *truncated = in_dir("truncated.pem");
    write_text(truncated, "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n");
    expect_load_error(truncated, NULL, truncated, "no certificate found");

    char *pem = in_dir("errors.pem");
    assert_int_equal(tls_write_self_signed(pem, NULL, &err), 0);
    char *cert, *key;
    split_pem(pem, &cert, &key);
    char *cert_only = in_dir("errors-cert.pem");
    write_text(cert_only, cert);
    expect_load_error(cert_only, NULL, cert_only, "no usable private key");
    expect_load_error(cert_only, missing, missing, "No such file or directory");
    expect_load_error(cert_only, garbage, garbage, "no usable private key");

    /* A key that belongs to another certificate. */
    char *other = in_dir("errors-other.pem");
    assert_int_equal(tls_write_self_signed(other, NULL, &err), 0);
    char *ocert, *okey;
    split_pem(other, &ocert, &okey);
    char *wrong_key = in_dir("errors-wrong-key.pem");
    write_text(wrong_key, okey);
    expect_load_error(cert_only, wrong_key, wrong_key, "does not match");

    /* An encrypted key fails at once instead of asking for a passphrase. */
    BIO *kb = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    assert_non_null(pkey);
    BIO_free(kb);
    char *encrypted = in_dir("errors-encrypted.pem");
    FILE *f = fopen(encrypted, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pkey, EVP_aes_128_cbc(),
                                          (unsigned char *)"passphrase", 10, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(pkey);
    expect_load_error(cert_only, encrypted, encrypted, "no usable private key");

    free(cert);
    free(key);
    free(ocert);
    free(okey);

    char *nodir = in_dir("no/such/dir.pem");
    assert_int_equal(tls_write_self_signed(nodir, NULL, &err), -1);
    assert_non_null(strstr(err.text, nodir));
}

static void test_reload(void **state)
{
    tls_error err;
    char *path = in_dir("reload.pem");
    static const char *const a[] = { "a.example", NULL }, *const b[] = { "b.example", NULL };
    assert_int_equal(tls_write_self_signed(path, a, &err), 0);
    tls_server *srv = tls_server_new(path, NULL, NULL, &err);
    assert_non_null(srv);
    SSL_CTX *cctx = client_ctx(0, 0);
    char names[128];

    /* A connection made before the reload... */
    conn old;
    conn_sockets(&old);
    conn_open_ssl(&old, tls_server_ssl_new(srv, old.fd[0]), cctx);

    unlink(path);
    assert_int_equal(tls_write_self_signed(path, b, &err), 0);
    assert_int_equal(tls_server_reload(srv, &err), 0);

    /* ...keeps its context and completes with the old certificate; a new one gets the new. */
    conn fresh;
    conn_sockets(&fresh);
    conn_open_ssl(&fresh, tls_server_ssl_new(srv, fresh.fd[0]), cctx);
    handshake_ok(&old);
    handshake_ok(&fresh);
    peer_names(&old, names, sizeof(names));
    assert_string_equal(names, "a.example");
    peer_names(&fresh, names, sizeof(names));
    assert_string_equal(names, "b.example");
    conn_close(&old);
    conn_close(&fresh);

    /* A broken file: the reload fails, names the file, and the current context stays. */
    write_text(path, "garbage\n");
    assert_int_equal(tls_server_reload(srv, &err), -1);
    assert_non_null(strstr(err.text, path));
    conn_sockets(&fresh);
    conn_open_ssl(&fresh, tls_server_ssl_new(srv, fresh.fd[0]), cctx);
    handshake_ok(&fresh);
    peer_names(&fresh, names, sizeof(names));
    assert_string_equal(names, "b.example");
    conn_close(&fresh);
    tls_server_free(srv);

    /* A generated certificate survives a reload unchanged. */
    srv = tls_server_new(NULL, NULL, a, &err);
    assert_non_null(srv);
    conn_sockets(&old);
    conn_open_ssl(&old, tls_server_ssl_new(srv, old.fd[0]), cctx);
    handshake_ok(&old);
    X509 *first = SSL_get1_peer_certificate(old.client);
    assert_int_equal(tls_server_reload(srv, &err), 0);
    conn_sockets(&fresh);
    conn_open_ssl(&fresh, tls_server_ssl_new(srv, fresh.fd[0]), cctx);
    handshake_ok(&fresh);
    X509 *second = SSL_get1_peer_certificate(fresh.client);
    assert_int_equal(X509_cmp(first, second), 0);
    X509_free(first);
    X509_free(second);
    conn_close(&old);
    conn_close(&fresh);
    tls_server_free(srv);

    /* tls_server_new reports what tls_server_ctx_new would. */
    assert_null(tls_server_new(in_dir("nothing.pem"), NULL, NULL, &err));
    assert_non_null(strstr(err.text, "No such file or directory"));
    SSL_CTX_free(cctx);
}

/* Connections made on several threads while the context is swapped underneath them. */
typedef struct maker_arg {
    tls_server *srv;
    int made;
} maker_arg;

static void *maker(void *p)
{
    maker_arg *arg = p;
    int fd[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0)
        return NULL;
    for (int i = 0; i < 200; i++) {
        SSL *ssl = tls_server_ssl_new(arg->srv, fd[0]);
        if (ssl) {
            arg->made++;
            SSL_free(ssl);
        }
    }
    close(fd[0]);
    close(fd[1]);
    return NULL;
}

static void test_reload_concurrent(void **state)
{
    tls_error err;
    char *path = in_dir("concurrent.pem");
    assert_int_equal(tls_write_self_signed(path, NULL, &err), 0);
    tls_server *srv = tls_server_new(path, NULL, NULL, &err);
    assert_non_null(srv);
    maker_arg args[3] = { { srv, 0 }, { srv, 0 }, { srv, 0 } };
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, maker, &args[i]), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(tls_server_reload(srv, &err), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].made, 200);
    }
    tls_server_free(srv);
}

static void test_io_steps(void **state)
{
    tls_error err;
    tls_server *srv = tls_server_new(NULL, NULL, NULL, &err);
    assert_non_null(srv);
    SSL_CTX *cctx = client_ctx(0, 0);
    conn c;
    conn_sockets(&c);
    conn_open_ssl(&c, tls_server_ssl_new(srv, c.fd[0]), cctx);

    char buf[4096];
    size_t n;
    /* Nothing has arrived: reading wants more input, also before the handshake. */
    assert_int_equal(tls_read(c.server, buf, sizeof(buf), &n), TLS_WANT_READ);
    handshake_ok(&c);
    assert_int_equal(tls_read(c.server, buf, sizeof(buf), &n), TLS_WANT_READ);
    assert_int_equal(n, 0);

    assert_int_equal(SSL_write(c.client, "<presence/>", 11), 11);
    assert_int_equal(tls_read(c.server, buf, sizeof(buf), &n), TLS_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "<presence/>", 11);

    /* Write far more than the socket holds: partial writes, then want-write; the unsent rest
     * is retried from a different buffer, as a write queue that compacts would do. */
    enum { TOTAL = 4 << 20 };
    unsigned char *out = malloc(TOTAL), *moved = malloc(TOTAL), *in = malloc(TOTAL);
    assert_true(out && moved && in);
    for (size_t i = 0; i < TOTAL; i++)
        out[i] = (unsigned char)(i * 7 + (i >> 11));
    memcpy(moved, out, TOTAL);
    size_t sent = 0, got = 0;
    int want_writes = 0, partial = 0;
    bool use_moved = false;
    while (got < TOTAL) {
        /* The server writes until the socket is full, then the client drains it. */
        while (sent < TOTAL) {
            const unsigned char *src = (use_moved ? moved : out) + sent;
            tls_status s = tls_write(c.server, src, TOTAL - sent, &n);
            if (s != TLS_OK) {
                assert_int_equal(s, TLS_WANT_WRITE);
                want_writes++;
                use_moved = !use_moved;
                break;
            }
            assert_true(n > 0 && n <= TOTAL - sent);
            partial += n < TOTAL - sent;
            sent += n;
        }
        while (got < TOTAL) {
            int r = SSL_read(c.client, in + got, (int)(TOTAL - got));
            if (r <= 0) {
                assert_int_equal(SSL_get_error(c.client, r), SSL_ERROR_WANT_READ);
                break;
            }
            got += (size_t)r;
        }
    }
    assert_int_equal(sent, TOTAL);
    assert_true(want_writes > 0);
    assert_true(partial > 0);
    assert_memory_equal(in, out, TOTAL);
    free(out);
    free(moved);
    free(in);

    /* close_notify from the server reaches the client as a clean close... */
    assert_int_equal(tls_shutdown(c.server), TLS_OK);
    assert_int_equal(SSL_read(c.client, buf, sizeof(buf)), 0);
    assert_int_equal(SSL_get_error(c.client, 0), SSL_ERROR_ZERO_RETURN);
    /* ...and the client's reaches the server as TLS_CLOSED. */
    assert_int_equal(SSL_shutdown(c.client), 1);
    assert_int_equal(tls_read(c.server, buf, sizeof(buf), &n), TLS_CLOSED);
    conn_close(&c);

    /* A peer that just goes away is a failure, with a reason: OpenSSL's for a plain EOF, the
     * socket's errno when the peer's close reset the connection (it left data unread). */
    static const char *const reasons[] = { "unexpected eof while reading",
                                           "Connection reset by peer" };
    for (int i = 0; i < 2; i++) {
        conn_sockets(&c);
        conn_open_ssl(&c, tls_server_ssl_new(srv, c.fd[0]), cctx);
        handshake_ok(&c);
        /* The client takes in the session tickets, or leaves them and more unread. */
        if (i == 0)
            assert_int_equal(SSL_read(c.client, buf, sizeof(buf)), -1);
        else
            assert_int_equal(tls_write(c.server, "unread", 6, &n), TLS_OK);
        SSL_free(c.client);
        close(c.fd[1]);
        assert_int_equal(tls_read(c.server, buf, sizeof(buf), &n), TLS_FAILED);
        tls_last_error(&err);
        assert_string_equal(err.text, reasons[i]);
        assert_int_equal(ERR_peek_error(), 0);
        SSL_free(c.server);
        close(c.fd[0]);
    }

    /* A peer that sends garbage instead of a ClientHello. */
    conn_sockets(&c);
    c.server = tls_server_ssl_new(srv, c.fd[0]);
    assert_int_equal(write(c.fd[1], "<stream:stream>\r\n\r\n", 19), 19);
    assert_int_equal(tls_handshake(c.server), TLS_FAILED);
    tls_last_error(&err);
    assert_true(strlen(err.text) > 0);
    SSL_free(c.server);
    close(c.fd[0]);
    close(c.fd[1]);

    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_exporter(void **state)
{
    static const char label[] = "EXPORTER-Channel-Binding";
    tls_error err;
    SSL_CTX *sctx = tls_server_ctx_new(NULL, NULL, NULL, &err);
    assert_non_null(sctx);
    SSL_CTX *cctx = client_ctx(0, 0);
    unsigned char first[32], srv_cb[32], cli_cb[32], zero[32] = { 0 };

    for (int round = 0; round < 2; round++) {
        conn c;
        conn_open(&c, sctx, cctx);
        assert_int_equal(tls_exporter(c.server, srv_cb), -1);  /* before the handshake */
        handshake_ok(&c);
        assert_int_equal(SSL_version(c.server), TLS1_3_VERSION);
        assert_int_equal(tls_exporter(c.server, srv_cb), 0);
        assert_int_equal(SSL_export_keying_material(c.client, cli_cb, 32, label,
                                                    sizeof(label) - 1, NULL, 0, 0), 1);
        assert_memory_equal(srv_cb, cli_cb, 32);
        assert_memory_not_equal(srv_cb, zero, 32);
        /* A different label gives different bytes: the label is really used. */
        assert_int_equal(SSL_export_keying_material(c.client, cli_cb, 32, "EXPORTER-Other",
                                                    14, NULL, 0, 0), 1);
        assert_memory_not_equal(srv_cb, cli_cb, 32);
        if (round == 0)
            memcpy(first, srv_cb, 32);
        else
            assert_memory_not_equal(first, srv_cb, 32);  /* per connection */
        conn_close(&c);
    }
    SSL_CTX_free(cctx);

    /* Undefined on TLS 1.2 (RFC 9266 needs the TLS 1.3 exporter). */
    cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    conn c;
    conn_open(&c, sctx, cctx);
    handshake_ok(&c);
    assert_int_equal(tls_exporter(c.server, srv_cb), -1);
    conn_close(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

int main(void)
{
    /* As in the servers: a write to a peer that has gone must fail, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_certificate),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_old_protocols_refused),
        cmocka_unit_test(test_pem_files),
        cmocka_unit_test(test_pem_errors),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_reload_concurrent),
        cmocka_unit_test(test_io_steps),
        cmocka_unit_test(test_exporter),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
