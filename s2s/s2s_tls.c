/* s2s/s2s_tls.c — the federation's pair of TLS contexts (s2s_tls.h): built with core/tls's policy
 * and certificate loading, our identity copied from the accepting context to the connecting one,
 * trust anchors on both, a verify callback that never fails the handshake, and the verdict read
 * after it. */
#include "s2s/s2s_tls.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/mem.h"
#include "s2s/cert_id.h"

struct s2s_tls {
    SSL_CTX *accept_ctx;   /* streams we accept: server side */
    SSL_CTX *connect_ctx;  /* streams we open: client side */
    char *cert_path;       /* NULL: the certificate was generated; reloads keep it */
    char *key_path;
    char *cafile;
    char *capath;
};

/* Names the session cache of the accepting side: OpenSSL refuses to resume a session that carried
 * a client certificate without one. */
static const unsigned char session_context[] = "jabshard-s2s";

static char *dup_or_null(const char *s)
{
    return s ? mem_strdup(s) : NULL;
}

/* Where the verify callback keeps the first error it saw (plus one) on the SSL: with every error
 * let through, SSL_get_verify_result ends with the last one ("unable to verify the first
 * certificate"), while the first says why ("unable to get local issuer certificate"). */
static int first_error_index = -1;
static pthread_once_t first_error_once = PTHREAD_ONCE_INIT;

static void first_error_index_new(void)
{
    first_error_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The handshake goes on whatever the chain; the verdict is read after it. */
static int verify_let_through(int preverify_ok, X509_STORE_CTX *store)
{
    if (preverify_ok || first_error_index < 0)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl && !SSL_get_ex_data(ssl, first_error_index))
        SSL_set_ex_data(ssl, first_error_index,
                        (void *)(intptr_t)(X509_STORE_CTX_get_error(store) + 1));
    return 1;
}

/* Our certificate, chain and key, as installed in from. */
static int copy_identity(SSL_CTX *to, SSL_CTX *from, tls_error *err)
{
    X509 *cert = SSL_CTX_get0_certificate(from);
    EVP_PKEY *key = SSL_CTX_get0_privatekey(from);
    STACK_OF(X509) *chain = NULL;
    if (!cert || !key || !SSL_CTX_get0_chain_certs(from, &chain) ||
        !SSL_CTX_use_certificate(to, cert) || !SSL_CTX_use_PrivateKey(to, key) ||
        (chain && !SSL_CTX_set1_chain(to, chain))) {
        tls_error_set(err, "s2s TLS: cannot share the certificate between directions: %s",
                tls_openssl_reason());
        return -1;
    }
    return 0;
}

static int use_trust(SSL_CTX *ctx, const s2s_tls *t, tls_error *err)
{
    if (!SSL_CTX_set_default_verify_paths(ctx)) {
        tls_error_set(err, "s2s TLS: the system's trust anchors: %s", tls_openssl_reason());
        return -1;
    }
    if ((t->cafile || t->capath) && !SSL_CTX_load_verify_locations(ctx, t->cafile, t->capath)) {
        tls_error_set(err, "s2s TLS: cannot load trust anchors from %s%s%s: %s",
                t->cafile ? t->cafile : "", t->cafile && t->capath ? " and " : "",
                t->capath ? t->capath : "", tls_openssl_reason());
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_let_through);
    return 0;
}

/* Both contexts from t's files; the identity from `identity` (a reload of a generated
 * certificate), else from the files or generated for hosts. */
static int contexts_new(const s2s_tls *t, SSL_CTX *identity, const char *const hosts[],
                        SSL_CTX **accept_out, SSL_CTX **connect_out, tls_error *err)
{
    SSL_CTX *acc = tls_ctx_new(TLS_server_method(), err);
    SSL_CTX *con = acc ? tls_ctx_new(TLS_client_method(), err) : NULL;
    bool ok = acc && con;
    if (ok)
        ok = (identity ? copy_identity(acc, identity, err)
                       : tls_ctx_use_certificate(acc, t->cert_path, t->key_path, hosts, err)) == 0;
    ok = ok && copy_identity(con, acc, err) == 0 && use_trust(acc, t, err) == 0 &&
         use_trust(con, t, err) == 0;
    if (ok && !SSL_CTX_set_session_id_context(acc, session_context, sizeof(session_context) - 1)) {
        tls_error_set(err, "s2s TLS: session context: %s", tls_openssl_reason());
        ok = false;
    }
    if (!ok) {
        SSL_CTX_free(acc);
        SSL_CTX_free(con);
        return -1;
    }
    *accept_out = acc;
    *connect_out = con;
    return 0;
}

s2s_tls *s2s_tls_new(const char *cert_path, const char *key_path, const char *cafile,
                     const char *capath, const char *const hosts[], tls_error *err)
{
    pthread_once(&first_error_once, first_error_index_new);
    s2s_tls *t = mem_zalloc(sizeof(*t));
    t->cert_path = dup_or_null(cert_path);
    t->key_path = dup_or_null(key_path);
    t->cafile = dup_or_null(cafile);
    t->capath = dup_or_null(capath);
    if (contexts_new(t, NULL, hosts, &t->accept_ctx, &t->connect_ctx, err) < 0) {
        s2s_tls_free(t);
        return NULL;
    }
    return t;
}

void s2s_tls_free(s2s_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->accept_ctx);
    SSL_CTX_free(t->connect_ctx);
    free(t->cert_path);
    free(t->key_path);
    free(t->cafile);
    free(t->capath);
    free(t);
}

int s2s_tls_reload(s2s_tls *t, tls_error *err)
{
    SSL_CTX *acc, *con;
    if (contexts_new(t, t->cert_path ? NULL : t->accept_ctx, NULL, &acc, &con, err) < 0)
        return -1;
    SSL_CTX_free(t->accept_ctx);    /* SSLs made from them hold their own references */
    SSL_CTX_free(t->connect_ctx);
    t->accept_ctx = acc;
    t->connect_ctx = con;
    return 0;
}

static SSL *ssl_on(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    return ssl;
}

SSL *s2s_tls_accept_ssl(s2s_tls *t, int fd)
{
    SSL *ssl = ssl_on(t->accept_ctx, fd);
    if (ssl)
        SSL_set_accept_state(ssl);
    return ssl;
}

/* SNI carries host names only (RFC 6066 §3). */
static bool ip_literal(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1 || s[0] == '[';
}

SSL *s2s_tls_connect_ssl(s2s_tls *t, int fd, const char *remote_domain)
{
    SSL *ssl = ssl_on(t->connect_ctx, fd);
    if (!ssl)
        return NULL;
    if (remote_domain && remote_domain[0] && !ip_literal(remote_domain) &&
        !SSL_set_tlsext_host_name(ssl, remote_domain)) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

bool s2s_tls_peer_valid_for(SSL *ssl, const char *domain, char *why, size_t whylen)
{
    char scratch[1];
    if (!why || !whylen) {
        why = scratch;
        whylen = sizeof(scratch);
    }
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (!peer) {
        snprintf(why, whylen, "no certificate");
        return false;
    }
    long verdict = SSL_get_verify_result(ssl);
    intptr_t first = first_error_index >= 0
                         ? (intptr_t)SSL_get_ex_data(ssl, first_error_index) : 0;
    if (first)
        verdict = (long)(first - 1);
    if (first || verdict != X509_V_OK) {
        snprintf(why, whylen, "certificate verify failed: %s",
                 X509_verify_cert_error_string(verdict));
        return false;
    }
    if (!s2s_cert_names_domain(peer, domain)) {
        snprintf(why, whylen, "certificate does not name %s", domain ? domain : "(none)");
        return false;
    }
    return true;
}
