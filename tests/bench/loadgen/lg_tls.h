/* tests/bench/loadgen/lg_tls.h — the client side of TLS for the load generator: one OpenSSL
 * context for every connection, no certificate verification (the servers under test use
 * self-signed certificates), and an SSL per connection in client mode with the domain as SNI.
 * The non-blocking steps themselves are core/tls.h's (tls_handshake, tls_read, tls_write), which
 * work for either side.
 *
 * Modes as on the servers: SSL_MODE_RELEASE_BUFFERS, so 19,000 idle connections hold no record
 * buffers, and partial writes from a buffer that may move between calls.
 *
 * Thread rules: one thread; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_TLS_H
#define JABSHARD_LOADGEN_LG_TLS_H

#include <openssl/ssl.h>

/* NULL (after printing OpenSSL's reason to stderr) when OpenSSL cannot make a context. */
SSL_CTX *lg_tls_ctx_new(void);
/* A client SSL on the connected socket fd; NULL when OpenSSL cannot allocate one. */
SSL *lg_tls_client_new(SSL_CTX *ctx, int fd, const char *sni);

#endif
