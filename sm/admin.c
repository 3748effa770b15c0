/* sm/admin.c — the admin channel (see admin.h): requests against the core (sessions, kick,
 * status, stats, announce), and the Unix socket they arrive on. */
#include "sm/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "sm/announce.h"

#define ADMIN_MAX_REQUEST 1024
#define ADMIN_KICK_TEXT "kicked by an administrator"

/* ---- requests ---- */

typedef struct session_list {
    char **lines;
    size_t n;
} session_list;

static void admin_collect(sm_session *sess, void *ctx)
{
    session_list *l = ctx;
    char since[32];
    sm_format_time(sess->since_ms, since);
    buf b = BUF_INIT;
    buf_appendf(&b, "%s\t%s\t%016llx\t%s\t%s", jid_full(&sess->jid), sm_link_service(sess->link),
                (unsigned long long)sess->sid, since, sess->available ? "available" : "bound");
    buf_append(&b, "", 1);
    l->lines = mem_realloc(l->lines, (l->n + 1) * sizeof(char *));
    l->lines[l->n++] = mem_strdup(buf_data(&b));
    buf_free(&b);
}

static int admin_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static sm_admin_status admin_sessions(sm *s, buf *out)
{
    session_list l = {0};
    sm_each_session(s, admin_collect, &l);
    if (l.n)
        qsort(l.lines, l.n, sizeof(char *), admin_cmp);
    for (size_t i = 0; i < l.n; i++) {
        buf_appendf(out, "%s\n", l.lines[i]);
        free(l.lines[i]);
    }
    free(l.lines);
    buf_appendf(out, "ok\n");
    return SM_ADMIN_OK;
}

static sm_admin_status admin_kick(sm *s, const char *arg, size_t len, buf *out)
{
    jid j;
    if (jid_parse(arg, len, &j) != JID_OK) {
        buf_appendf(out, "refused: %.*s is not a valid JID\n", (int)len, arg);
        return SM_ADMIN_REFUSED;
    }
    sm_admin_status st = SM_ADMIN_OK;
    if (!sm_is_local_user(s, &j)) {
        buf_appendf(out, "refused: %s is not an account of this server\n", jid_full(&j));
        st = SM_ADMIN_REFUSED;
    } else {
        size_t n = sm_kick(s, &j, ADMIN_KICK_TEXT);
        if (n) {
            log_notice("sm: admin kicked %s (%zu session(s))", jid_full(&j), n);
            buf_appendf(out, "kicked %zu session(s)\nok\n", n);
        } else {
            buf_appendf(out, "refused: %s has no session\n", jid_full(&j));
            st = SM_ADMIN_REFUSED;
        }
    }
    jid_free(&j);
    return st;
}

static void admin_storage_line(const sm_admin_storage *st, buf *out)
{
    if (st)
        buf_appendf(out, "storage\t%s\t%s\t%d\t%zu\t%llu\n", st->driver,
                    st->down ? "down" : "up", st->workers, st->pending,
                    (unsigned long long)st->outages);
    else
        buf_appendf(out, "storage\t-\tunknown\t0\t0\t0\n");
}

static int64_t admin_uptime(const sm *s)
{
    int64_t up = (sm_wall_ms() - sm_started_ms(s)) / 1000;
    return up < 0 ? 0 : up;
}

static sm_admin_status admin_status(sm *s, const sm_admin_storage *storage, buf *out)
{
    sm_stats st;
    sm_get_stats(s, &st);
    char started[32];
    sm_format_time(sm_started_ms(s), started);
    buf_appendf(out, "started\t%s\nuptime\t%lld\nsessions\t%llu\nusers\t%llu\nstarting\t%s\n",
                started, (long long)admin_uptime(s), (unsigned long long)st.sessions,
                (unsigned long long)st.users, sm_start_waiting(s) ? "yes" : "no");
    const sm_config *c = sm_cfg(s);
    for (int i = 0; i < c->nservices; i++)
        buf_appendf(out, "service\t%s\t%s\t%s\n", c->services[i].id,
                    c->services[i].role == SM_ROLE_FRONT ? "front" : "component",
                    sm_link_count(s, c->services[i].id) ? "up" : "down");
    admin_storage_line(storage, out);
    buf_appendf(out, "ok\n");
    return SM_ADMIN_OK;
}

static void admin_count_available(sm_session *sess, void *ctx)
{
    *(uint64_t *)ctx += sess->available;
}

static sm_admin_status admin_stats(sm *s, const sm_admin_storage *storage, buf *out)
{
    sm_stats st;
    sm_get_stats(s, &st);
    uint64_t available = 0;
    sm_each_session(s, admin_count_available, &available);
    static const char *const kinds[SM_KINDS] = {"message", "presence", "iq", "other"};
    buf_appendf(out,
                "sessions\t%llu\nsessions_available\t%llu\nsessions_detached\t%llu\n"
                "users\t%llu\nloads_pending\t%llu\nlinks\t%llu\nfronts_up\t%llu\n"
                "components_up\t%llu\n",
                (unsigned long long)st.sessions, (unsigned long long)available,
                (unsigned long long)st.detached, (unsigned long long)st.users,
                (unsigned long long)st.loads_pending,
                (unsigned long long)(st.fronts_up + st.components_up),
                (unsigned long long)st.fronts_up, (unsigned long long)st.components_up);
    for (int k = 0; k < SM_KINDS; k++)
        buf_appendf(out, "stanzas_in_%s\t%llu\n", kinds[k], (unsigned long long)st.stanzas_in[k]);
    buf_appendf(out,
                "bytes_in\t%llu\nstanzas_out\t%llu\nbytes_out\t%llu\ndropped_stale\t%llu\n"
                "dropped_bad\t%llu\ndropped_too_big\t%llu\nstorage_pending\t%zu\n"
                "uptime\t%lld\nok\n",
                (unsigned long long)st.bytes_in, (unsigned long long)st.stanzas_out,
                (unsigned long long)st.bytes_out, (unsigned long long)st.dropped_stale,
                (unsigned long long)st.dropped_bad, (unsigned long long)st.dropped_too_big,
                storage ? storage->pending : 0, (long long)admin_uptime(s));
    return SM_ADMIN_OK;
}

static sm_admin_status admin_announce(sm *s, const char *text, size_t len, buf *out)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 && text[i] != '\t') {
            buf_appendf(out, "refused: the text has control characters\n");
            return SM_ADMIN_REFUSED;
        }
    if (utf8_scan(text, len) < 0) {
        buf_appendf(out, "refused: the text is not UTF-8\n");
        return SM_ADMIN_REFUSED;
    }
    char *body = mem_strndup(text, len);
    size_t n = sm_announce(s, NULL, NULL, body);
    free(body);
    log_notice("sm: admin announcement sent to %zu session(s)", n);
    buf_appendf(out, "announced to %zu session(s)\nok\n", n);
    return SM_ADMIN_OK;
}

sm_admin_status sm_admin_execute(sm *s, const sm_admin_storage *storage, const char *line,
                                 size_t len, buf *out)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    size_t cmd = 0;
    while (cmd < len && line[cmd] != ' ' && line[cmd] != '\t')
        cmd++;
    size_t arg = cmd;
    while (arg < len && (line[arg] == ' ' || line[arg] == '\t'))
        arg++;
    bool has_arg = arg < len;
    if (cmd == 8 && memcmp(line, "sessions", 8) == 0 && !has_arg)
        return admin_sessions(s, out);
    if (cmd == 6 && memcmp(line, "status", 6) == 0 && !has_arg)
        return admin_status(s, storage, out);
    if (cmd == 5 && memcmp(line, "stats", 5) == 0 && !has_arg)
        return admin_stats(s, storage, out);
    if (cmd == 8 && memcmp(line, "announce", 8) == 0 && has_arg)
        return admin_announce(s, line + arg, len - arg, out);
    if (cmd == 4 && memcmp(line, "kick", 4) == 0 && has_arg &&
        !memchr(line + arg, ' ', len - arg) && !memchr(line + arg, '\t', len - arg))
        return admin_kick(s, line + arg, len - arg, out);
    buf_appendf(out, "error: unknown request (expected \"sessions\", \"kick JID\", \"status\", "
                     "\"stats\" or \"announce TEXT\")\n");
    return SM_ADMIN_ERROR;
}

/* ---- the socket ---- */

typedef struct admin_conn {
    evloop_io io;
    sm_admin *owner;
    buf in, out;
    struct admin_conn *next;
} admin_conn;

struct sm_admin {
    evloop *loop;
    sm *core;
    evloop_io listener;
    char *path;
    admin_conn *conns;
    sm_admin_storage_fn storage;
    void *storage_ctx;
};

static void conn_close(sm_admin *a, admin_conn *c)
{
    evloop_io_set(a->loop, &c->io, 0);
    close(c->io.fd);
    for (admin_conn **pp = &a->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

static void conn_write(sm_admin *a, admin_conn *c)
{
    while (buf_len(&c->out)) {
        ssize_t n = write(c->io.fd, buf_data(&c->out), buf_len(&c->out));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(a, c);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    conn_close(a, c);   /* the whole reply is out: closing tells the client it is complete */
}

static void conn_read(sm_admin *a, admin_conn *c)
{
    char tmp[512];
    ssize_t n = read(c->io.fd, tmp, sizeof(tmp));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(a, c);
        return;
    }
    buf_append(&c->in, tmp, (size_t)n);
    char *nl = memchr(buf_data(&c->in), '\n', buf_len(&c->in));
    if (!nl && buf_len(&c->in) <= ADMIN_MAX_REQUEST)
        return;
    sm_admin_storage st = {0};
    if (a->storage)
        a->storage(a->storage_ctx, &st);
    if (nl)
        sm_admin_execute(a->core, a->storage ? &st : NULL, buf_data(&c->in),
                         (size_t)(nl - buf_data(&c->in)), &c->out);
    else
        buf_appendf(&c->out, "error: request too long\n");
    evloop_io_set(a->loop, &c->io, EVLOOP_WRITE);
    conn_write(a, c);
}

static void conn_event(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    admin_conn *c = arg;
    if (events & EVLOOP_WRITE)
        conn_write(c->owner, c);
    else if (events & EVLOOP_READ)
        conn_read(c->owner, c);
}

static void admin_accept(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    sm_admin *a = arg;
    for (;;) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("sm: admin socket: accept: %s", strerror(errno));
            return;
        }
        admin_conn *c = mem_zalloc(sizeof(*c));
        c->owner = a;
        buf_init(&c->in);
        buf_init(&c->out);
        evloop_io_init(&c->io, fd, conn_event, c);
        if (evloop_io_set(loop, &c->io, EVLOOP_READ) != 0) {
            close(fd);
            buf_free(&c->in);
            buf_free(&c->out);
            free(c);
            continue;
        }
        c->next = a->conns;
        a->conns = c;
    }
}

/* Whether an SM answers on path (a live socket, not a file left behind). */
static bool admin_live(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
    close(fd);
    return live;
}

sm_admin *sm_admin_open(evloop *loop, sm *s, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "admin socket %s: the path is longer than %zu bytes", path,
                 sizeof(sun.sun_path) - 1);
        return NULL;
    }
    strcpy(sun.sun_path, path);
    if (admin_live(&sun)) {
        snprintf(err, errlen, "admin socket %s: another session manager is running on it", path);
        return NULL;
    }
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "admin socket: %s", strerror(errno));
        return NULL;
    }
    /* Created owner-only from the start: no window in which others could connect. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc != 0 || listen(fd, 16) != 0) {
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    sm_admin *a = mem_zalloc(sizeof(*a));
    a->loop = loop;
    a->core = s;
    a->path = mem_strdup(path);
    evloop_io_init(&a->listener, fd, admin_accept, a);
    if (evloop_io_set(loop, &a->listener, EVLOOP_READ) != 0) {
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        sm_admin_close(a);
        return NULL;
    }
    log_info("sm: admin socket %s", path);
    return a;
}

void sm_admin_set_storage(sm_admin *a, sm_admin_storage_fn fn, void *ctx)
{
    a->storage = fn;
    a->storage_ctx = ctx;
}

void sm_admin_close(sm_admin *a)
{
    if (!a)
        return;
    while (a->conns)
        conn_close(a, a->conns);
    evloop_io_set(a->loop, &a->listener, 0);
    close(a->listener.fd);
    unlink(a->path);
    free(a->path);
    free(a);
}
