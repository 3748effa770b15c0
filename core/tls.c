/* core/tls.c — the OpenSSL 3 helpers behind core/tls.h: the server context policy, loading PEM
 * files with errors that name them, the self-signed certificate, the swappable context, the
 * non-blocking I/O steps and the tls-exporter channel binding.
 */
#include "core/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

/* TLS 1.2 suites: forward secret (ECDHE) with an AEAD, ECDSA before RSA, AES-128 first (as fast as
 * AES-256 is strong enough here), ChaCha20 for clients without AES instructions. TLS 1.3 keeps
 * OpenSSL's default suites, which are these three AEADs. */
#define TLS12_CIPHERS                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                      \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                      \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define SELF_SIGNED_BACKDATE (60 * 60)              /* tolerate clients with a slow clock */
#define SELF_SIGNED_LIFETIME (365L * 24 * 60 * 60)

static const char *const default_hosts[] = { "localhost", NULL };

/* ---- errors ---------------------------------------------------------------------------------- */

void tls_error_set(tls_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}

const char *tls_openssl_reason(void)
{
    unsigned long code = ERR_peek_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    return reason ? reason : "unknown OpenSSL error";
}

/* ---- the self-signed certificate ------------------------------------------------------------- */

static bool ascii_host(const char *host)
{
    if (!host[0])
        return false;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

static bool add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    bool ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* The host names go in as a GENERAL_NAMES structure, not through X509V3_EXT_conf's text syntax,
 * so no host name can smuggle in a second entry. */
static bool add_san(X509 *cert, const char *const hosts[])
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    bool ok = names != NULL;
    for (size_t i = 0; ok && hosts[i]; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        ok = gn && dns && ASN1_STRING_set(dns, hosts[i], -1);
        if (ok) {
            GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
            dns = NULL;
            ok = sk_GENERAL_NAME_push(names, gn) > 0;
            if (ok)
                gn = NULL;
        }
        ASN1_IA5STRING_free(dns);
        GENERAL_NAME_free(gn);
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(names);
    return ok;
}

/* A fresh P-256 key and a self-signed certificate for hosts. */
static int self_signed_new(const char *const hosts[], EVP_PKEY **key_out, X509 **cert_out,
                           tls_error *err)
{
    if (!hosts || !hosts[0])
        hosts = default_hosts;
    for (size_t i = 0; hosts[i]; i++)
        if (!ascii_host(hosts[i])) {
            tls_error_set(err, "self-signed certificate: host name \"%s\" is not ASCII (use its "
                      "A-label form)", hosts[i]);
            return -1;
        }

    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    unsigned char serial[16];
    random_bytes(serial, sizeof(serial));
    serial[0] = (serial[0] & 0x7f) | 0x40;  /* positive, and a full 16 bytes */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    /* The CN is limited to 64 characters; clients match the subjectAltName anyway. */
    const char *cn = strlen(hosts[0]) <= 64 ? hosts[0] : "jabshard";
    X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;

    bool ok = key && cert && bn && X509_set_version(cert, X509_VERSION_3) &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) &&
              X509_gmtime_adj(X509_getm_notBefore(cert), -SELF_SIGNED_BACKDATE) &&
              X509_gmtime_adj(X509_getm_notAfter(cert), SELF_SIGNED_LIFETIME) &&
              X509_set_pubkey(cert, key) &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                                         -1, -1, 0) &&
              X509_set_issuer_name(cert, name) &&
              add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") &&
              add_ext(cert, NID_key_usage, "critical,digitalSignature") &&
              add_ext(cert, NID_ext_key_usage, "serverAuth") &&
              add_san(cert, hosts) &&
              X509_sign(cert, key, EVP_sha256()) > 0;
    BN_free(bn);
    if (!ok) {
        tls_error_set(err, "self-signed certificate: %s", tls_openssl_reason());
        EVP_PKEY_free(key);
        X509_free(cert);
        return -1;
    }
    *key_out = key;
    *cert_out = cert;
    return 0;
}

int tls_write_self_signed(const char *path, const char *const hosts[], tls_error *err)
{
    EVP_PKEY *key;
    X509 *cert;
    if (self_signed_new(hosts, &key, &cert, err) < 0)
        return -1;
    int rc = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        tls_error_set(err, "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
    } else {
        bool ok = PEM_write_X509(f, cert) && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
        int saved = errno;
        if (fclose(f) != 0 && ok) {
            ok = false;
            saved = errno;
        }
        if (ok) {
            rc = 0;
        } else {
            tls_error_set(err, "cannot write %s: %s", path, strerror(saved));
            unlink(path);
            ERR_clear_error();
        }
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* ---- server contexts ------------------------------------------------------------------------- */

/* A daemon has no terminal to ask for a passphrase: an encrypted key fails to load instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

SSL_CTX *tls_ctx_new(const SSL_METHOD *method, tls_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
        tls_error_set(err, "TLS context: %s", tls_openssl_reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    return ctx;
}

/* Installs the certificate and chain from cert_path and the key from key_path, which may be the
 * same file, with the blocks in any order (PEM readers skip blocks of other types). */
static int load_pem(SSL_CTX *ctx, const char *cert_path, const char *key_path, tls_error *err)
{
    BIO *in = BIO_new_file(cert_path, "r");
    if (!in) {
        tls_error_set(err, "cannot read %s: %s", cert_path, strerror(errno));
        ERR_clear_error();
        return -1;
    }
    X509 *cert = PEM_read_bio_X509_AUX(in, NULL, no_passphrase, NULL);
    if (!cert) {
        tls_error_set(err, "%s: no certificate found (expected PEM \"BEGIN CERTIFICATE\"): %s",
                  cert_path, tls_openssl_reason());
        BIO_free(in);
        return -1;
    }
    int ok = SSL_CTX_use_certificate(ctx, cert);
    X509_free(cert);
    if (!ok) {
        tls_error_set(err, "%s: certificate refused: %s", cert_path, tls_openssl_reason());
        BIO_free(in);
        return -1;
    }
    X509 *chain;
    while ((chain = PEM_read_bio_X509(in, NULL, no_passphrase, NULL)))
        if (!SSL_CTX_add0_chain_cert(ctx, chain)) {
            X509_free(chain);
            tls_error_set(err, "%s: chain certificate refused: %s", cert_path,
                          tls_openssl_reason());
            BIO_free(in);
            return -1;
        }
    BIO_free(in);
    /* The chain loop ends on "no start line" at the end of the file; anything else is damage. */
    unsigned long last = ERR_peek_last_error();
    if (last && !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
        tls_error_set(err, "%s: bad chain certificate: %s", cert_path, tls_openssl_reason());
        return -1;
    }
    ERR_clear_error();

    const char *kpath = key_path ? key_path : cert_path;
    in = BIO_new_file(kpath, "r");
    if (!in) {
        tls_error_set(err, "cannot read %s: %s", kpath, strerror(errno));
        ERR_clear_error();
        return -1;
    }
    EVP_PKEY *key = PEM_read_bio_PrivateKey(in, NULL, no_passphrase, NULL);
    BIO_free(in);
    if (!key) {
        tls_error_set(err, "%s: no usable private key (missing, encrypted or not PEM): %s", kpath,
                  tls_openssl_reason());
        return -1;
    }
    ok = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (!ok || !SSL_CTX_check_private_key(ctx)) {
        tls_error_set(err, "%s: the private key does not match the certificate in %s: %s", kpath,
                  cert_path, tls_openssl_reason());
        return -1;
    }
    return 0;
}

static int use_self_signed(SSL_CTX *ctx, const char *const hosts[], tls_error *err)
{
    EVP_PKEY *key;
    X509 *cert;
    if (self_signed_new(hosts, &key, &cert, err) < 0)
        return -1;
    int ok = SSL_CTX_use_certificate(ctx, cert) && SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    X509_free(cert);
    if (!ok) {
        tls_error_set(err, "self-signed certificate refused: %s", tls_openssl_reason());
        return -1;
    }
    char names[256] = "";
    size_t len = 0;
    for (size_t i = 0; hosts && hosts[i] && len < sizeof(names); i++) {
        int w = snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "", hosts[i]);
        len += w > 0 ? (size_t)w : 0;
    }
    log_warn("tls: no certificate configured; using a self-signed certificate for %s, which "
             "clients will not trust", names[0] ? names : "localhost");
    return 0;
}

int tls_ctx_use_certificate(SSL_CTX *ctx, const char *cert_path, const char *key_path,
                            const char *const hosts[], tls_error *err)
{
    return cert_path ? load_pem(ctx, cert_path, key_path, err) : use_self_signed(ctx, hosts, err);
}

SSL_CTX *tls_server_ctx_new(const char *cert_path, const char *key_path, const char *const hosts[],
                            tls_error *err)
{
    SSL_CTX *ctx = tls_ctx_new(TLS_server_method(), err);
    if (!ctx)
        return NULL;
    if (tls_ctx_use_certificate(ctx, cert_path, key_path, hosts, err) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- the swappable context ------------------------------------------------------------------- */

struct tls_server {
    pthread_mutex_t lock;      /* guards ctx: held to take a reference and to swap */
    SSL_CTX *ctx;
    char *cert_path;           /* NULL: the certificate was generated and reloads keep it */
    char *key_path;
};

tls_server *tls_server_new(const char *cert_path, const char *key_path, const char *const hosts[],
                           tls_error *err)
{
    SSL_CTX *ctx = tls_server_ctx_new(cert_path, key_path, hosts, err);
    if (!ctx)
        return NULL;
    tls_server *srv = mem_zalloc(sizeof(*srv));
    pthread_mutex_init(&srv->lock, NULL);
    srv->ctx = ctx;
    srv->cert_path = cert_path ? mem_strdup(cert_path) : NULL;
    srv->key_path = key_path ? mem_strdup(key_path) : NULL;
    return srv;
}

void tls_server_free(tls_server *srv)
{
    if (!srv)
        return;
    SSL_CTX_free(srv->ctx);
    pthread_mutex_destroy(&srv->lock);
    free(srv->cert_path);
    free(srv->key_path);
    free(srv);
}

int tls_server_reload(tls_server *srv, tls_error *err)
{
    if (!srv->cert_path)
        return 0;
    SSL_CTX *fresh = tls_server_ctx_new(srv->cert_path, srv->key_path, NULL, err);
    if (!fresh)
        return -1;
    pthread_mutex_lock(&srv->lock);
    SSL_CTX *old = srv->ctx;
    srv->ctx = fresh;
    pthread_mutex_unlock(&srv->lock);
    SSL_CTX_free(old);  /* SSLs made from it hold their own references */
    return 0;
}

SSL *tls_server_ssl_new(tls_server *srv, int fd)
{
    pthread_mutex_lock(&srv->lock);
    SSL *ssl = SSL_new(srv->ctx);
    pthread_mutex_unlock(&srv->lock);
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

/* ---- non-blocking steps ---------------------------------------------------------------------- */

/* Why the last step on this thread failed: OpenSSL's error code, or errno for a socket error. */
static _Thread_local unsigned long failed_code;
static _Thread_local int failed_errno;

static tls_status step_status(SSL *ssl, int ret)
{
    int saved_errno = errno;
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        failed_errno = saved_errno;
        break;
    default:
        failed_errno = 0;
        break;
    }
    failed_code = ERR_peek_error();
    ERR_clear_error();
    return TLS_FAILED;
}

tls_status tls_handshake(SSL *ssl)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl);
    return ret == 1 ? TLS_OK : step_status(ssl, ret);
}

tls_status tls_read(SSL *ssl, void *buf, size_t len, size_t *n)
{
    ERR_clear_error();
    *n = 0;
    return SSL_read_ex(ssl, buf, len, n) ? TLS_OK : step_status(ssl, 0);
}

tls_status tls_write(SSL *ssl, const void *buf, size_t len, size_t *n)
{
    ERR_clear_error();
    *n = 0;
    return SSL_write_ex(ssl, buf, len, n) ? TLS_OK : step_status(ssl, 0);
}

tls_status tls_shutdown(SSL *ssl)
{
    ERR_clear_error();
    int ret = SSL_shutdown(ssl);
    return ret >= 0 ? TLS_OK : step_status(ssl, ret);
}

void tls_last_error(tls_error *err)
{
    if (failed_code) {
        const char *reason = ERR_reason_error_string(failed_code);
        tls_error_set(err, "%s", reason ? reason : "unknown OpenSSL error");
    } else if (failed_errno) {
        tls_error_set(err, "%s", strerror(failed_errno));
    } else {
        tls_error_set(err, "connection closed without close_notify");
    }
}

/* ---- channel binding ------------------------------------------------------------------------- */

int tls_exporter(SSL *ssl, unsigned char out[32])
{
    static const char label[] = "EXPORTER-Channel-Binding";
    if (SSL_version(ssl) != TLS1_3_VERSION || !SSL_is_init_finished(ssl))
        return -1;
    if (SSL_export_keying_material(ssl, out, 32, label, sizeof(label) - 1,
                                   (const unsigned char *)"", 0, 1) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}
