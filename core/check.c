/* core/check.c — the configuration checker's list and the checks both programs make (check.h). */
#include "core/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CERT_SOON_DAYS 30
#define REACH_TIMEOUT_MS 2000

__attribute__((format(printf, 3, 0))) static void line(check_list *l, const char *kind,
                                                      const char *fmt, va_list ap)
{
    printf("%s: %s: ", l->program, kind);
    vprintf(fmt, ap);
    putchar('\n');
}

void check_error(check_list *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line(l, "error", fmt, ap);
    va_end(ap);
    l->errors++;
}

void check_warn(check_list *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line(l, "warning", fmt, ap);
    va_end(ap);
    l->warnings++;
}

void check_ok(check_list *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line(l, "ok", fmt, ap);
    va_end(ap);
}

int check_finish(check_list *l, const char *path)
{
    printf("%s: %s: %d error(s), %d warning(s)\n", l->program, path, l->errors, l->warnings);
    fflush(stdout);
    return l->errors ? 1 : 0;
}

/* The addresses of host (NULL: any) and port, for listening or connecting. */
static struct addrinfo *addresses(const char *host, int port, bool passive)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = passive ? AI_PASSIVE : 0};
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo *res = NULL;
    if (getaddrinfo(host && *host ? host : NULL, service, &hints, &res) != 0)
        return NULL;
    return res;
}

void check_listen(check_list *l, const char *ip, int port, const char *what)
{
    struct addrinfo *res = addresses(ip, port, true);
    if (!res) {
        check_error(l, "%s: '%s' is not an address of this machine", what, ip ? ip : "");
        return;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = fd < 0 ? -1 : bind(fd, res->ai_addr, res->ai_addrlen);
    int e = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    const char *at = ip && *ip ? ip : "*";
    if (rc == 0)
        check_ok(l, "%s: %s port %d is free", what, at, port);
    else if (e == EADDRINUSE)
        check_warn(l, "%s: %s port %d is in use (running already?)", what, at, port);
    else
        check_error(l, "%s: cannot listen on %s port %d: %s", what, at, port, strerror(e));
}

int check_accepts(const char *host, int port)
{
    struct addrinfo *res = addresses(host, port, false);
    if (!res)
        return -1;
    bool up = false;
    for (struct addrinfo *a = res; a && !up; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            up = true;
        } else if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t len = sizeof err;
            up = poll(&p, 1, REACH_TIMEOUT_MS) == 1 &&
                 getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return up;
}

void check_reach(check_list *l, const char *host, int port, const char *what)
{
    int up = check_accepts(host, port);
    if (up < 0)
        check_warn(l, "%s: cannot resolve '%s'", what, host);
    else if (up)
        check_ok(l, "%s: %s port %d accepts connections", what, host, port);
    else
        check_warn(l, "%s: nothing accepts connections on %s port %d (not started yet?)", what,
                   host, port);
}

static int days_until(const ASN1_TIME *t)
{
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, t))
        return 0;
    return days;
}

void check_certificate(check_list *l, const char *pem, const char *key_path,
                       const char *const hosts[])
{
    FILE *f = fopen(pem, "r");
    if (!f) {
        check_error(l, "certificate %s: %s (the front would make a self-signed one that no "
                       "client trusts)", pem, strerror(errno));
        return;
    }
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert) {
        check_error(l, "certificate %s: no PEM certificate in it", pem);
        return;
    }
    const char *kp = key_path ? key_path : pem;
    EVP_PKEY *key = NULL;
    if ((f = fopen(kp, "r"))) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (!key)
        check_error(l, "certificate %s: no private key in %s", pem, kp);
    else if (X509_check_private_key(cert, key) != 1)
        check_error(l, "certificate %s: the private key in %s is not this certificate's", pem, kp);
    EVP_PKEY_free(key);
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        check_error(l, "certificate %s: not valid yet", pem);
    int left = days_until(X509_get0_notAfter(cert));
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        check_error(l, "certificate %s: expired %d day(s) ago", pem, -left);
    else if (left < CERT_SOON_DAYS)
        check_warn(l, "certificate %s: expires in %d day(s)", pem, left);
    else
        check_ok(l, "certificate %s: valid for %d more days", pem, left);
    for (size_t i = 0; hosts && hosts[i]; i++) {
        if (X509_check_host(cert, hosts[i], strlen(hosts[i]), 0, NULL) == 1)
            check_ok(l, "certificate %s: names %s", pem, hosts[i]);
        else
            check_error(l, "certificate %s: does not name %s (clients of %s will refuse it)",
                        pem, hosts[i], hosts[i]);
    }
    X509_free(cert);
}
