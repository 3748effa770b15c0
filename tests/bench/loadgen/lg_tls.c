/* tests/bench/loadgen/lg_tls.c — the load generator's OpenSSL client context (see lg_tls.h). */
#include "tests/bench/loadgen/lg_tls.h"

#include <openssl/err.h>
#include <stdio.h>

/* Accepts any chain without looking at it. SSL_VERIFY_NONE alone still has OpenSSL build and
 * check the chain (a signature verification per handshake) only to ignore the outcome. */
static int accept_any_chain(X509_STORE_CTX *store, void *arg)
{
    return 1;
}

SSL_CTX *lg_tls_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fprintf(stderr, "loadgen: TLS: %s\n", ERR_reason_error_string(ERR_get_error()));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, accept_any_chain, NULL);
    /* Every login is a full handshake, as for a client that never connected before: the
     * servers' handshake cost is part of what a login costs them. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

SSL *lg_tls_client_new(SSL_CTX *ctx, int fd, const char *sni)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        ERR_clear_error();
        return NULL;
    }
    if (!SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, sni)) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}
