/* core/tls.h — OpenSSL 3 for the servers: contexts with our protocol policy, a self-signed
 * certificate when none is configured, reload on SIGHUP, non-blocking I/O steps over a socket, and
 * the tls-exporter channel binding for SCRAM-*-PLUS.
 *
 * Policy of every context (the s2s client contexts too): TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE
 * and AES-GCM or ChaCha20-Poly1305, in the server's order; TLS 1.3 with OpenSSL's defaults; no
 * compression, no renegotiation; session tickets on. Modes: SSL_MODE_RELEASE_BUFFERS (idle
 * connections hold no record buffers), SSL_MODE_ENABLE_PARTIAL_WRITE and
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER. An encrypted private key is an error, never a passphrase
 * prompt.
 *
 * Thread rules: an SSL_CTX is reference counted and may be shared by threads; an SSL belongs to
 * the thread that owns its connection. A tls_server may be used from any thread. OpenSSL's error
 * queue is per thread; the I/O steps clear it before each call.
 */
#ifndef JABSHARD_CORE_TLS_H
#define JABSHARD_CORE_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

typedef struct tls_error {
    char text[512];   /* names the file and what is wrong with it */
} tls_error;

/* A server context. cert_path: a PEM file with the certificate (then any chain certificates) and,
 * when key_path is NULL, the private key as well, in either order. cert_path NULL: a fresh
 * self-signed ECDSA P-256 certificate for hosts (NULL-terminated; "localhost" when NULL or empty;
 * subjectAltName DNS entries, valid from an hour ago for a year) is made in memory, and a warning
 * logged. Returns the context (one reference, the caller's), or NULL with err filled. */
SSL_CTX *tls_server_ctx_new(const char *cert_path, const char *key_path, const char *const hosts[],
                            tls_error *err);

/* The pieces of tls_server_ctx_new, for the s2s contexts (s2s/s2s_tls.h), which accept and connect
 * with the same policy. tls_ctx_new: a context for method (TLS_server_method() or
 * TLS_client_method()) with the policy above and no certificate; NULL with err filled.
 * tls_ctx_use_certificate: installs the certificate, chain and key as tls_server_ctx_new does
 * (cert_path NULL: a generated self-signed certificate for hosts); 0, or -1 with err filled. */
SSL_CTX *tls_ctx_new(const SSL_METHOD *method, tls_error *err);
int tls_ctx_use_certificate(SSL_CTX *ctx, const char *cert_path, const char *key_path,
                            const char *const hosts[], tls_error *err);

/* For the layers that build on these contexts: fills err (printf-like); and OpenSSL's reason for
 * the first error queued on this thread ("no start line"), leaving the queue empty. */
void tls_error_set(tls_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *tls_openssl_reason(void);

/* Writes a new self-signed certificate (as above) and its key to path as one PEM file, mode 0600.
 * Never overwrites: an existing path is an error. Returns 0, or -1 with err filled. */
int tls_write_self_signed(const char *path, const char *const hosts[], tls_error *err);

/* The current server context, replaceable while connections are open: each SSL keeps a reference
 * to the context it was made from, so a reload affects new connections only. */
typedef struct tls_server tls_server;

/* As tls_server_ctx_new; the arguments are copied for reloads. */
tls_server *tls_server_new(const char *cert_path, const char *key_path, const char *const hosts[],
                           tls_error *err);
void tls_server_free(tls_server *srv);
/* Builds a new context from the same files and swaps it in (SIGHUP, after a certificate renewal).
 * On failure the current context stays and err says why. A generated certificate is kept as it
 * is. Returns 0 or -1. */
int tls_server_reload(tls_server *srv, tls_error *err);
/* A server-side SSL on the connected socket fd, from the current context; NULL when OpenSSL
 * cannot allocate one. */
SSL *tls_server_ssl_new(tls_server *srv, int fd);

/* Non-blocking steps on an SSL over a non-blocking socket. After TLS_WANT_READ or TLS_WANT_WRITE,
 * wait for that readiness (which can differ from the call's direction) and call again. OpenSSL
 * writes to the socket with write(2), alerts included: the process must ignore SIGPIPE. */
typedef enum {
    TLS_OK,          /* done: handshake complete, or *n bytes moved */
    TLS_WANT_READ,
    TLS_WANT_WRITE,
    TLS_CLOSED,      /* the peer sent close_notify */
    TLS_FAILED,      /* protocol error, unexpected EOF or socket error: tls_last_error says which */
} tls_status;

tls_status tls_handshake(SSL *ssl);
/* Reads up to len bytes. Records already decrypted are not visible to epoll: read until
 * TLS_WANT_READ before waiting again. */
tls_status tls_read(SSL *ssl, void *buf, size_t len, size_t *n);
/* Writes up to len bytes; *n may be less than len (partial writes are on). After a TLS_WANT_*,
 * call again with the same bytes (the buffer may have moved) and at least the same len. */
tls_status tls_write(SSL *ssl, const void *buf, size_t len, size_t *n);
/* Sends close_notify (TLS_OK once sent; the peer's reply is not awaited). Not after TLS_FAILED. */
tls_status tls_shutdown(SSL *ssl);
/* Why the last TLS_FAILED on this thread happened, for the log: OpenSSL's reason ("unsupported
 * protocol"), or the socket's errno text. (The steps leave OpenSSL's error queue empty.) */
void tls_last_error(tls_error *err);

/* The tls-exporter channel binding (RFC 9266): 32 bytes of keying material with the label
 * "EXPORTER-Channel-Binding" and an empty context. Only defined for TLS 1.3 with a finished
 * handshake; returns 0, or -1 otherwise. */
int tls_exporter(SSL *ssl, unsigned char out[32]);

#endif
