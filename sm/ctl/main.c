/* sm/ctl/main.c — jabshardctl, the administration tool (as prosodyctl and ejabberdctl are to
 * their servers): accounts in the session manager's storage, found through the SM's config file.
 *
 *   jabshardctl [-c sm.xml] adduser JID [PASSWORD]
 *   jabshardctl [-c sm.xml] deluser JID
 *   jabshardctl [-c sm.xml] passwd JID [PASSWORD]
 *   jabshardctl [-c sm.xml] listusers [HOST]
 *   jabshardctl [-c sm.xml] import FILE      (lines "JID PASSWORD" or "JID {SCRAM}..."; "-" = stdin)
 *   jabshardctl [-c sm.xml] sessions         (who is online: asks the running SM)
 *   jabshardctl [-c sm.xml] kick JID         (ends a session, or all of an account's)
 *   jabshardctl [-c sm.xml] status           (uptime, sessions, fronts and components, storage)
 *   jabshardctl [-c sm.xml] stats            (the SM's counters)
 *   jabshardctl [-c sm.xml] announce TEXT    (a headline message to every online session)
 *
 * --json (or -j) prints status, stats and sessions as one JSON object or array instead.
 *
 * A password not given on the command line is read from standard input (without echo on a
 * terminal), so it stays out of shell history and process lists. Exit status: 0 done, 1 refused
 * (no such user, exists, bad JID, no such session), 2 bad usage or configuration, 3 storage
 * failure or, for sessions, kick, status, stats and announce, the SM is not running (they talk
 * to it over its admin socket, sm/admin.h). */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/jid.h"
#include "core/log.h"
#include "core/mem.h"
#include "sm/config.h"
#include "sm/modules.h"
#include "xdbsql/xdbsql.h"

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_STORAGE = 3 };

static void usage(void)
{
    fprintf(stderr,
            "usage: jabshardctl [-c sm.xml] [--json] COMMAND\n"
            "  adduser JID [PASSWORD]   create an account\n"
            "  deluser JID              delete an account and everything stored for it\n"
            "  passwd JID [PASSWORD]    set an account's password\n"
            "  listusers [HOST]         list accounts (of one host)\n"
            "  import FILE              create accounts from lines \"JID PASSWORD\" or\n"
            "                           \"JID {SCRAM}s1:i1:stored1:server1:s256:i256:stored256:server256\"\n"
            "                           (SCRAM-SHA-1 then SCRAM-SHA-256, base64; - = stdin)\n"
            "  sessions                 list the sessions of the running SM\n"
            "  kick JID                 end a session (full JID) or all of an account's (bare)\n"
            "  status                   the running SM: uptime, sessions, fronts and components\n"
            "                           and their links, storage\n"
            "  stats                    the running SM's counters\n"
            "  announce TEXT            a headline message to every online session\n"
            "  --json, -j               status, stats and sessions as JSON\n");
    exit(EXIT_USAGE);
}

/* Parses an account JID (user@host, a served host). Returns NULL with *out set, or why not. */
static const char *account_parse(const sm_config *sc, const char *text, size_t len, jid *out)
{
    size_t node_len, domain_len;
    if (jid_parse(text, len, out) != JID_OK)
        return "not a valid JID";
    if (!jid_node(out, &node_len) || !jid_is_bare(out)) {
        jid_free(out);
        return "not an account JID (user@host)";
    }
    const char *domain = jid_domain(out, &domain_len);
    char host[JID_PART_MAX + 1];
    memcpy(host, domain, domain_len);
    host[domain_len] = '\0';
    if (!sm_config_host(sc, host)) {
        jid_free(out);
        return "its host is not one of the configured <host>s";
    }
    return NULL;
}

static void parse_account(const sm_config *sc, const char *arg, jid *out)
{
    const char *why = account_parse(sc, arg, strlen(arg), out);
    if (why) {
        fprintf(stderr, "jabshardctl: %s: %s\n", arg, why);
        exit(EXIT_REFUSED);
    }
}

static char *part_dup(const char *p, size_t len)
{
    return mem_strndup(p, len);
}

static xdb_request *account_request(xdb_op op, const jid *account)
{
    size_t nlen, dlen;
    const char *node = jid_node(account, &nlen), *domain = jid_domain(account, &dlen);
    char *user = part_dup(node, nlen), *host = part_dup(domain, dlen);
    xdb_request *r = xdb_request_new(op, host, user);
    free(user);
    free(host);
    return r;
}

/* Reads one line from standard input, without echo on a terminal. */
static char *read_password(const char *prompt)
{
    struct termios saved, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (n <= 0) {
        fprintf(stderr, "jabshardctl: no password given\n");
        exit(EXIT_USAGE);
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

/* Runs r and maps its outcome to an exit status, printing why it failed. */
static int finish(db_conn *c, xdb_request *r, const char *what)
{
    xdb_status s = xdb_run(c, r);
    int status = 0;
    switch (s) {
    case XDB_OK:
        break;
    case XDB_NOT_FOUND:
        fprintf(stderr, "jabshardctl: %s: no such user %s@%s\n", what, r->user, r->host);
        status = EXIT_REFUSED;
        break;
    case XDB_EXISTS:
        fprintf(stderr, "jabshardctl: %s: %s@%s already exists\n", what, r->user, r->host);
        status = EXIT_REFUSED;
        break;
    default:
        fprintf(stderr, "jabshardctl: %s: %s\n", what, r->error);
        status = s == XDB_ERROR && strstr(r->error, "SASLprep") ? EXIT_REFUSED : EXIT_STORAGE;
        break;
    }
    xdb_request_free(r);
    return status;
}

static int cmd_password_op(db_conn *c, const sm_config *sc, xdb_op op, int argc, char **argv)
{
    if (argc < 1 || argc > 2)
        usage();
    jid account;
    parse_account(sc, argv[0], &account);
    char *password = argc == 2 ? mem_strdup(argv[1]) : read_password("Password: ");
    xdb_request *r = account_request(op, &account);
    xdb_request_set_password(r, password);
    OPENSSL_cleanse(password, strlen(password));
    free(password);
    jid_free(&account);
    return finish(c, r, op == XDB_USER_CREATE ? "adduser" : "passwd");
}

static int cmd_deluser(db_conn *c, const sm_config *sc, int argc, char **argv)
{
    if (argc != 1)
        usage();
    jid account;
    parse_account(sc, argv[0], &account);
    xdb_request *r = account_request(XDB_USER_DELETE, &account);
    jid_free(&account);
    return finish(c, r, "deluser");
}

static int cmd_listusers(db_conn *c, int argc, char **argv)
{
    if (argc > 1)
        usage();
    xdb_request *r = xdb_request_new(XDB_USER_LIST, argc ? argv[0] : NULL, NULL);
    if (xdb_run(c, r) != XDB_OK) {
        fprintf(stderr, "jabshardctl: listusers: %s\n", r->error);
        xdb_request_free(r);
        return EXIT_STORAGE;
    }
    for (size_t i = 0; i < r->users.n; i++)
        printf("%s\n", r->users.v[i]);
    xdb_request_free(r);
    return 0;
}

/* Bulk import. Deriving SCRAM credentials (PBKDF2, about a millisecond an account) is the
 * expensive part, so every core derives the next batch while the main thread writes the current
 * one, in file order, as one transaction. A batch the database refuses (an account that exists)
 * is written again one account at a time, so that only the refused lines fail. */

#define IMPORT_BATCH 1024

typedef struct import_batch {
    xdb_request *requests[IMPORT_BATCH];
    size_t lines[IMPORT_BATCH];
    size_t count;
    /* Derivation: threads take requests[next++] until count. */
    size_t next;
    pthread_mutex_t lock;
    pthread_t threads[64];
    int nthreads;
} import_batch;

static void *derive_worker(void *arg)
{
    import_batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        size_t i = b->next++;
        pthread_mutex_unlock(&b->lock);
        if (i >= b->count)
            return NULL;
        xdb_request *r = b->requests[i];
        if (!r->password)
            continue; /* imported with its credentials */
        if (scram_derive(SCRAM_SHA1, r->password, NULL, 0, SCRAM_ITERATIONS, &r->creds.sha1) != 0 ||
            scram_derive(SCRAM_SHA256, r->password, NULL, 0, SCRAM_ITERATIONS, &r->creds.sha256) != 0)
            snprintf(r->error, sizeof(r->error), "the password has characters SASLprep prohibits");
        xdb_request_set_password(r, NULL);
    }
}

static void derive_start(import_batch *b)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    b->nthreads = cores > 1 ? (int)(cores > 64 ? 64 : cores) : 1;
    b->next = 0;
    for (int i = 0; i < b->nthreads; i++)
        pthread_create(&b->threads[i], NULL, derive_worker, b);
}

static void derive_wait(import_batch *b)
{
    for (int i = 0; i < b->nthreads; i++)
        pthread_join(b->threads[i], NULL);
}

/* Decodes base64 text of at most max bytes' worth into out; returns the length or -1. */
static int base64_field(const char *text, size_t len, uint8_t *out, size_t max)
{
    uint8_t tmp[128];
    if (len == 0 || len % 4 || len / 4 * 3 > sizeof(tmp))
        return -1;
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)text, (int)len);
    if (n < 0)
        return -1;
    n -= (text[len - 1] == '=') + (len > 1 && text[len - 2] == '=');
    if ((size_t)n > max)
        return -1;
    memcpy(out, tmp, (size_t)n);
    return n;
}

/* One mechanism's "salt:iterations:storedkey:serverkey" (base64 but iterations) into cr; advances
 * *p past it and the colon after. */
static bool scram_fields(const char **p, scram_hash h, scram_credentials *cr)
{
    const char *f[4];
    size_t len[4];
    for (int i = 0; i < 4; i++) {
        f[i] = *p;
        len[i] = strcspn(*p, ":");
        *p += len[i];
        if (**p == ':')
            ++*p;
        else if (i < 3)
            return false;
    }
    char *end;
    unsigned long iterations = strtoul(f[1], &end, 10);
    int salt_len = base64_field(f[0], len[0], cr->salt, sizeof(cr->salt));
    cr->iterations = (uint32_t)iterations;
    cr->salt_len = salt_len > 0 ? (size_t)salt_len : 0;
    return salt_len > 0 && end == f[1] + len[1] && iterations > 0 && iterations <= 1000000 &&
           base64_field(f[2], len[2], cr->stored_key, SCRAM_MAX_KEY) == (int)scram_key_len(h) &&
           base64_field(f[3], len[3], cr->server_key, SCRAM_MAX_KEY) == (int)scram_key_len(h);
}

/* Credentials exported by another server instead of a password: "{SCRAM}" then SCRAM-SHA-1's and
 * SCRAM-SHA-256's salt:iterations:StoredKey:ServerKey, all colon-separated, base64 but the counts. */
#define IMPORT_SCRAM_PREFIX "{SCRAM}"

static bool parse_imported_creds(const char *text, xdb_credentials *creds)
{
    const char *p = text + strlen(IMPORT_SCRAM_PREFIX);
    return scram_fields(&p, SCRAM_SHA1, &creds->sha1) && p[-1] == ':' &&
           scram_fields(&p, SCRAM_SHA256, &creds->sha256) && *p == '\0';
}

/* Reads up to IMPORT_BATCH valid lines into b; bad lines are reported and counted. */
static void read_batch(FILE *in, const sm_config *sc, import_batch *b, size_t *lineno,
                       size_t *failures)
{
    char *line = NULL;
    size_t cap = 0;
    b->count = 0;
    while (b->count < IMPORT_BATCH && getline(&line, &cap, in) >= 0) {
        ++*lineno;
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#')
            continue;
        size_t jid_len = strcspn(p, " \t");
        char *password = p + jid_len + strspn(p + jid_len, " \t");
        jid account;
        const char *why = *password ? account_parse(sc, p, jid_len, &account)
                                    : "expected \"user@host password\"";
        if (why) {
            fprintf(stderr, "jabshardctl: import line %zu: %s\n", *lineno, why);
            ++*failures;
            continue;
        }
        xdb_request *r = account_request(XDB_USER_CREATE, &account);
        jid_free(&account);
        if (strncmp(password, IMPORT_SCRAM_PREFIX, strlen(IMPORT_SCRAM_PREFIX)) != 0) {
            xdb_request_set_password(r, password);
        } else if (!parse_imported_creds(password, &r->creds)) {
            fprintf(stderr, "jabshardctl: import line %zu: malformed {SCRAM} credentials\n",
                    *lineno);
            ++*failures;
            xdb_request_free(r);
            continue;
        }
        b->lines[b->count] = *lineno;
        b->requests[b->count++] = r;
    }
    if (line)
        OPENSSL_cleanse(line, cap);
    free(line);
}

static void report_failure(const import_batch *b, size_t i)
{
    const xdb_request *r = b->requests[i];
    fprintf(stderr, "jabshardctl: import line %zu: %s@%s: %s\n", b->lines[i], r->user, r->host,
            r->error[0] ? r->error : xdb_status_name(r->status));
}

/* Writes a derived batch; returns the failures. */
static size_t write_batch(db_conn *c, import_batch *b, size_t *created)
{
    size_t failures = 0, written = 0;
    bool whole = db_begin(c) == DB_OK;
    for (size_t i = 0; whole && i < b->count; i++) {
        if (b->requests[i]->error[0])
            continue;
        whole = xdb_run(c, b->requests[i]) == XDB_OK;
        written++;
    }
    if (whole && db_commit(c) == DB_OK) {
        *created += written;
    } else {
        db_rollback(c);
        for (size_t i = 0; i < b->count; i++) {
            xdb_request *r = b->requests[i];
            if (!r->error[0] && xdb_run(c, r) == XDB_OK)
                ++*created;
            else if (r->status == XDB_EXISTS)
                snprintf(r->error, sizeof(r->error), "already exists");
        }
    }
    for (size_t i = 0; i < b->count; i++) {
        if (b->requests[i]->error[0] || b->requests[i]->status != XDB_OK) {
            report_failure(b, i);
            failures++;
        }
        xdb_request_free(b->requests[i]);
    }
    b->count = 0;
    return failures;
}

static int cmd_import(db_conn *c, const sm_config *sc, int argc, char **argv)
{
    if (argc != 1)
        usage();
    FILE *in = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
    if (!in) {
        fprintf(stderr, "jabshardctl: import: cannot open %s: %s\n", argv[0], strerror(errno));
        return EXIT_USAGE;
    }
    import_batch *batches = mem_array(2, sizeof(import_batch));
    pthread_mutex_init(&batches[0].lock, NULL);
    pthread_mutex_init(&batches[1].lock, NULL);
    size_t lineno = 0, created = 0, failures = 0;
    import_batch *current = &batches[0], *next = &batches[1];
    read_batch(in, sc, current, &lineno, &failures);
    derive_start(current);
    derive_wait(current);
    while (current->count) {
        read_batch(in, sc, next, &lineno, &failures);
        if (next->count)
            derive_start(next);
        failures += write_batch(c, current, &created);
        if (next->count)
            derive_wait(next);
        import_batch *t = current;
        current = next;
        next = t;
    }
    pthread_mutex_destroy(&batches[0].lock);
    pthread_mutex_destroy(&batches[1].lock);
    free(batches);
    if (in != stdin)
        fclose(in);
    printf("imported %zu accounts, %zu failed\n", created, failures);
    return failures ? EXIT_REFUSED : 0;
}

/* A reply from the SM's admin channel: its lines (without newlines), the outcome last. */
typedef struct reply {
    char **lines;
    size_t n;
} reply;

static void reply_free(reply *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->lines[i]);
    free(r->lines);
}

/* One request to the running SM's admin channel: its reply lines in out, and the outcome line
 * ("ok", "refused: ...", "error: ...") mapped to an exit status (printed when not ok). */
static int admin_call(const sm_config *sc, const char *request, reply *out)
{
    *out = (reply){0};
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    const char *path = sc->admin_socket;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (strlen(path) >= sizeof(sun.sun_path) || fd < 0) {
        fprintf(stderr, "jabshardctl: admin socket %s: %s\n", path,
                fd < 0 ? strerror(errno) : "path too long");
        if (fd >= 0)
            close(fd);
        return EXIT_USAGE;
    }
    strcpy(sun.sun_path, path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        fprintf(stderr, "jabshardctl: cannot reach the session manager at %s: %s "
                        "(is jabshard-sm running with this configuration?)\n", path, strerror(errno));
        close(fd);
        return EXIT_STORAGE;
    }
    FILE *f = fdopen(fd, "r+");
    fprintf(f, "%s\n", request);
    fflush(f);
    shutdown(fd, SHUT_WR);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\n")] = '\0';
        out->lines = mem_realloc(out->lines, (out->n + 1) * sizeof(char *));
        out->lines[out->n++] = mem_strdup(line);
    }
    free(line);
    fclose(f);
    const char *last = out->n ? out->lines[out->n - 1] : NULL;
    int status = EXIT_STORAGE;
    if (!last)
        fprintf(stderr, "jabshardctl: the session manager closed the connection without an answer\n");
    else if (strcmp(last, "ok") == 0)
        status = 0;
    else if (strncmp(last, "refused: ", 9) == 0)
        status = EXIT_REFUSED;
    else if (strncmp(last, "error: ", 7) == 0)
        status = EXIT_USAGE;
    if (status && last)
        fprintf(stderr, "jabshardctl: %s\n", last);
    return status;
}

/* ---- JSON output (--json) ---- */

static void json_string(const char *v)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* A value that is all digits is a number in JSON, anything else a string. */
static void json_value(const char *v)
{
    bool number = *v && strspn(v, "0123456789") == strlen(v) && (v[0] != '0' || !v[1]);
    if (number)
        fputs(v, stdout);
    else
        json_string(v);
}

/* A line's tab-separated fields (at most max; the line is cut in place). */
static size_t fields(char *line, char **out, size_t max)
{
    size_t n = 0;
    for (char *p = line; n < max;) {
        out[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static void json_sessions(reply *r)
{
    static const char *const keys[] = {"jid", "link", "sid", "since", "state"};
    printf("[");
    for (size_t i = 0; i + 1 < r->n; i++) {
        char *f[5];
        size_t n = fields(r->lines[i], f, 5);
        printf("%s{", i ? ",\n " : "");
        for (size_t k = 0; k < n; k++) {
            printf("%s\"%s\": ", k ? ", " : "", keys[k]);
            json_string(f[k]);
        }
        printf("}");
    }
    printf("]\n");
}

/* stats: "NAME VALUE" lines as one object. */
static void json_stats(reply *r)
{
    printf("{");
    for (size_t i = 0; i + 1 < r->n; i++) {
        char *f[2];
        if (fields(r->lines[i], f, 2) != 2)
            continue;
        printf("%s", i ? ",\n " : "");
        json_string(f[0]);
        printf(": ");
        json_value(f[1]);
    }
    printf("}\n");
}

/* status: its records as an object, services as an array, storage as an object. */
static void json_status(reply *r)
{
    printf("{");
    bool first = true, services = false;
    for (size_t i = 0; i + 1 < r->n; i++) {
        char *f[6];
        size_t n = fields(r->lines[i], f, 6);
        if (strcmp(f[0], "service") == 0 && n == 4) {
            printf("%s{\"id\": ", services ? ",\n  " : first ? "\"services\": [" : ",\n \"services\": [");
            json_string(f[1]);
            printf(", \"role\": \"%s\", \"state\": \"%s\"}", f[2], f[3]);
            services = true;
            first = false;
            continue;
        }
        if (services) {
            printf("]");
            services = false;
        }
        printf("%s", first ? "" : ",\n ");
        first = false;
        if (strcmp(f[0], "storage") == 0 && n == 6) {
            printf("\"storage\": {\"driver\": ");
            json_string(f[1]);
            printf(", \"state\": \"%s\", \"workers\": %s, \"pending\": %s, \"outages\": %s}", f[2],
                   f[3], f[4], f[5]);
        } else if (n == 2) {
            json_string(f[0]);
            printf(": ");
            if (strcmp(f[1], "yes") == 0 || strcmp(f[1], "no") == 0)
                printf("%s", f[1][0] == 'y' ? "true" : "false");
            else
                json_value(f[1]);
        }
    }
    if (services)
        printf("]");
    else if (first)
        printf("\"services\": []");
    printf("}\n");
}

/* status as people read it. */
static void text_status(reply *r)
{
    for (size_t i = 0; i + 1 < r->n; i++) {
        char *f[6];
        size_t n = fields(r->lines[i], f, 6);
        if (strcmp(f[0], "service") == 0 && n == 4)
            printf("%-10s %s: %s\n", f[2], f[1], f[3]);
        else if (strcmp(f[0], "storage") == 0 && n == 6)
            printf("storage    %s: %s (%s workers, %s requests pending, %s outages)\n", f[1], f[2],
                   f[3], f[4], f[5]);
        else if (strcmp(f[0], "uptime") == 0 && n == 2) {
            long long up = atoll(f[1]);
            printf("uptime     %lldd %02lld:%02lld:%02lld\n", up / 86400, up / 3600 % 24,
                   up / 60 % 60, up % 60);
        } else if (n == 2)
            printf("%-10s %s\n", f[0], f[1]);
    }
}

static int cmd_admin(const sm_config *sc, bool json, int argc, char **argv)
{
    const char *cmd = argv[0];
    buf request = BUF_INIT;
    if (strcmp(cmd, "announce") == 0) {
        if (argc < 2)
            usage();
        buf_appendf(&request, "announce");
        for (int i = 1; i < argc; i++) {
            if (strpbrk(argv[i], "\r\n")) {
                fprintf(stderr, "jabshardctl: announce: the text is one line\n");
                buf_free(&request);
                return EXIT_USAGE;
            }
            buf_appendf(&request, " %s", argv[i]);
        }
    } else if (strcmp(cmd, "kick") == 0) {
        if (argc != 2 || strpbrk(argv[1], " \t\r\n"))
            usage();
        buf_appendf(&request, "kick %s", argv[1]);
    } else {
        if (argc != 1)
            usage();
        buf_appendf(&request, "%s", cmd);
    }
    buf_append(&request, "", 1);
    reply r;
    int status = admin_call(sc, buf_data(&request), &r);
    buf_free(&request);
    if (status == 0) {
        if (json && strcmp(cmd, "sessions") == 0)
            json_sessions(&r);
        else if (json && strcmp(cmd, "stats") == 0)
            json_stats(&r);
        else if (json && strcmp(cmd, "status") == 0)
            json_status(&r);
        else if (strcmp(cmd, "status") == 0)
            text_status(&r);
        else
            for (size_t i = 0; i + 1 < r.n; i++)
                printf("%s\n", r.lines[i]);
    } else {
        for (size_t i = 0; i + 1 < r.n; i++)
            printf("%s\n", r.lines[i]);
    }
    reply_free(&r);
    return status;
}

int main(int argc, char **argv)
{
    const char *config_path = "sm.xml";
    bool json = false;
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    /* "+": options stop at the command, so an announcement may start with a dash. */
    while ((opt = getopt_long(argc, argv, "+c:jh", longopts, NULL)) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else if (opt == 'j')
            json = true;
        else
            usage();
    }
    argc -= optind;
    argv += optind;
    if (argc < 1)
        usage();

    sm_config sc;
    config_error cerr;
    if (sm_config_load(config_path, sm_builtin_modules, &sc, &cerr) != 0) {
        fprintf(stderr, "jabshardctl: %s\n", cerr.text);
        return EXIT_USAGE;
    }
    log_open("jabshardctl", LOG_TO_STDERR, NULL, LL_WARN);
    static const char *const admin_cmds[] = {"sessions", "kick", "status", "stats", "announce",
                                             NULL};
    bool admin = false;
    for (int i = 0; admin_cmds[i]; i++)
        admin |= strcmp(argv[0], admin_cmds[i]) == 0;
    if (admin) {
        /* --json after the command, too (not in an announcement's text). */
        for (int i = 1; strcmp(argv[0], "announce") != 0 && i < argc;)
            if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
                json = true;
                memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(char *));
                argc--;
            } else {
                i++;
            }
        int status = cmd_admin(&sc, json, argc, argv);
        sm_config_free(&sc);
        return status;
    }
    char err[256];
    db_conn *c = db_open(&sc.storage.db, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "jabshardctl: %s\n", err);
        sm_config_free(&sc);
        return EXIT_STORAGE;
    }
    if (xdb_migrate(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "jabshardctl: %s\n", err);
        db_close(c);
        sm_config_free(&sc);
        return EXIT_STORAGE;
    }

    const char *cmd = argv[0];
    int status;
    if (strcmp(cmd, "adduser") == 0)
        status = cmd_password_op(c, &sc, XDB_USER_CREATE, argc - 1, argv + 1);
    else if (strcmp(cmd, "passwd") == 0)
        status = cmd_password_op(c, &sc, XDB_USER_PASSWD, argc - 1, argv + 1);
    else if (strcmp(cmd, "deluser") == 0)
        status = cmd_deluser(c, &sc, argc - 1, argv + 1);
    else if (strcmp(cmd, "listusers") == 0)
        status = cmd_listusers(c, argc - 1, argv + 1);
    else if (strcmp(cmd, "import") == 0)
        status = cmd_import(c, &sc, argc - 1, argv + 1);
    else
        usage();
    db_close(c);
    sm_config_free(&sc);
    return status;
}
