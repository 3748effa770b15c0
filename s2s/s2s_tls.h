/* s2s/s2s_tls.h — TLS for federation, both directions: the context for streams we accept and the
 * one for streams we open, with core/tls.h's policy (TLS 1.2+, its ciphers and modes), our
 * certificate presented on both sides, the peer's certificate always asked for and always let
 * through, and the verdict afterwards: does the peer's certificate chain to a trust anchor AND
 * name the domain it claims (s2s/cert_id.h)? Valid: SASL EXTERNAL; otherwise dialback. That choice
 * is the stream's, not this file's: a handshake never fails here over the peer's certificate.
 *
 * Certificates: one certificate (with every local domain in its subjectAltName) serves all local
 * domains for now, on both sides. Per-domain certificates (several <pemfile>) would become a
 * table of server contexts chosen by SNI in a servername callback on the accepting context, and
 * on the connecting context one chosen by the local domain of the stream: both live behind
 * s2s_tls_accept_ssl / s2s_tls_connect_ssl, so callers would not change (connect_ssl would gain
 * the local domain).
 *
 * Trust anchors: the system's default paths (SSL_CTX_set_default_verify_paths), plus cafile and
 * capath when given.
 *
 * Thread rules: an s2s_tls belongs to the s2s loop's thread (reload included); SSLs made from it
 * keep their context alive across a reload.
 */
#ifndef JABSHARD_S2S_S2S_TLS_H
#define JABSHARD_S2S_S2S_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "core/tls.h"

typedef struct s2s_tls s2s_tls;

/* cert_path, key_path, hosts: as tls_server_ctx_new (cert_path NULL: a generated self-signed
 * certificate for hosts, kept across reloads). cafile, capath: extra trust anchors (NULL: only the
 * system's). Returns NULL with err filled. */
s2s_tls *s2s_tls_new(const char *cert_path, const char *key_path, const char *cafile,
                     const char *capath, const char *const hosts[], tls_error *err);
void s2s_tls_free(s2s_tls *t);

/* A server-side SSL on the accepted socket fd (it asks for the peer's certificate); NULL when
 * OpenSSL cannot make one. */
SSL *s2s_tls_accept_ssl(s2s_tls *t, int fd);
/* A client-side SSL on the connected socket fd, with SNI set to remote_domain (unless it is an IP
 * literal); NULL when OpenSSL cannot make one. */
SSL *s2s_tls_connect_ssl(s2s_tls *t, int fd, const char *remote_domain);

/* After the handshake: whether the peer presented a certificate that chains to a trust anchor
 * (SSL_get_verify_result == X509_V_OK) and names domain (s2s_cert_names_domain). When false, why
 * (may be NULL) gets a short reason: "no certificate", "certificate verify failed: self-signed
 * certificate", "certificate does not name example.org". */
bool s2s_tls_peer_valid_for(SSL *ssl, const char *domain, char *why, size_t whylen);

/* SIGHUP: builds both contexts again from the same files (trust anchors included) and swaps them
 * in; on failure the current ones stay and err says why. Returns 0 or -1. */
int s2s_tls_reload(s2s_tls *t, tls_error *err);

#endif
