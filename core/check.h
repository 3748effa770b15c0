/* core/check.h — what `jabshard-c2s --check` and `jabshard-sm --check` share: a list of problems
 * found before anything starts (errors that would stop the program or a client, warnings that
 * deserve a look), printed one per line, and the checks both programs make (a port that can be
 * listened on, a peer that accepts a connection, a certificate a client would trust for the
 * served names).
 *
 * Thread rules: none (the checker runs alone, before the program would start).
 */
#ifndef JABSHARD_CORE_CHECK_H
#define JABSHARD_CORE_CHECK_H

#include <stdbool.h>

typedef struct check_list {
    const char *program;    /* "jabshard-c2s" */
    int errors, warnings;
} check_list;

void check_error(check_list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void check_warn(check_list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line saying what was checked and found right. */
void check_ok(check_list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the verdict for path; the exit status: 0 without errors, 1 with. */
int check_finish(check_list *l, const char *path);

/* ip (NULL or "": every address) and port can be listened on; in use is a warning (the
 * program may be running already). */
void check_listen(check_list *l, const char *ip, int port, const char *what);
/* host:port accepts a TCP connection within a second or two (a warning when not: the program
 * retries). */
void check_reach(check_list *l, const char *host, int port, const char *what);
/* The probe check_reach makes, without a line: 1 when host:port accepts a TCP connection, 0 when
 * not, -1 when host does not resolve. */
int check_accepts(const char *host, int port);
/* The PEM file pem (certificate chain, then the key, or the key in key_path) is readable, the
 * key is the certificate's, the certificate is valid now and for 30 more days (a warning within
 * them), and it names every one of hosts (NULL-terminated; DNS names and wildcards, RFC 6125). */
void check_certificate(check_list *l, const char *pem, const char *key_path,
                       const char *const hosts[]);

#endif
