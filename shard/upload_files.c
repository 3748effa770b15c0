/* shard/upload_files.c — HTTP File Upload's files on the front (upload_files.h). */
#include "shard/upload_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/upload_sign.h"

#define SLOT_HEX 32
#define NAME_MAX_BYTES 255
#define TYPE_MAX_BYTES 255
#define ABANDONED_SECONDS 86400

struct upload_put {
    int fd;
    char dir[4096];            /* <dir>/<slot> */
    uint64_t size, written;
    char meta[TYPE_MAX_BYTES + NAME_MAX_BYTES + 2];
    size_t meta_len;
};

struct upload_get {
    int fd;
    uint64_t left;
};

/* ---- the target ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into out (NUL-terminated, at most max bytes); false when malformed,
 * too long, or holding a NUL. */
static bool unescape(const char *s, size_t n, char *out, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int a = hex_value(s[i + 1]), b = hex_value(s[i + 2]);
            if (a < 0 || b < 0)
                return false;
            c = (char)(a * 16 + b);
            i += 2;
        }
        if (c == '\0' || o >= max)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* "<slot>/<escaped name>" into slot and name (decoded); false when it is not one. */
static bool split_target(const char *rel, char slot[SLOT_HEX + 1], char name[NAME_MAX_BYTES + 1])
{
    const char *slash = strchr(rel, '/');
    if (!slash || slash - rel != SLOT_HEX)
        return false;
    for (int i = 0; i < SLOT_HEX; i++)
        if (hex_value(rel[i]) < 0 || (rel[i] >= 'A' && rel[i] <= 'F'))
            return false;
    memcpy(slot, rel, SLOT_HEX);
    slot[SLOT_HEX] = '\0';
    const char *esc = slash + 1;
    if (!unescape(esc, strlen(esc), name, NAME_MAX_BYTES) || !*name || strchr(name, '/') ||
        has_control(name) || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return true;
}

/* The query's value of key (decoded into out), or false. */
static bool query_get(const char *query, const char *key, char *out, size_t max)
{
    size_t klen = strlen(key);
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > klen && p[klen] == '=' && memcmp(p, key, klen) == 0)
            return unescape(p + klen + 1, n - klen - 1, out, max);
        p += n + (end ? 1 : 0);
    }
    return false;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s || strlen(s) > 19)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

static void slot_dir(const front_upload *cfg, const char *slot, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", cfg->dir, slot);
}

/* ---- PUT ---- */

int upload_put_begin(const front_upload *cfg, const char *rel, const http_request *q, int64_t now,
                     upload_put **out, const char **why)
{
    char slot[SLOT_HEX + 1], name[NAME_MAX_BYTES + 1], type[TYPE_MAX_BYTES + 1] = "";
    char expires_s[24], size_s[24], sig[UPLOAD_SIG_HEX + 2];
    uint64_t expires, size;
    *out = NULL;
    if (!split_target(rel, slot, name)) {
        *why = "not an upload slot's URL";
        return 400;
    }
    if (!query_get(q->query, "e", expires_s, sizeof expires_s - 1) ||
        !query_get(q->query, "s", size_s, sizeof size_s - 1) ||
        !query_get(q->query, "sig", sig, sizeof sig - 1) || !parse_u64(expires_s, &expires) ||
        !parse_u64(size_s, &size) ||
        (strstr(q->query, "t=") && !query_get(q->query, "t", type, sizeof type - 1)) ||
        has_control(type)) {
        *why = "the URL lacks its signed parameters";
        return 400;
    }
    char path[SLOT_HEX + 1 + NAME_MAX_BYTES + 1];
    snprintf(path, sizeof path, "%s/%s", slot, name);
    if (!upload_sign_check(cfg->secret, cfg->secret_len, path, size, type, (int64_t)expires,
                           sig)) {
        *why = "the signature does not match";
        return 403;
    }
    if ((int64_t)expires < now) {
        *why = "the upload slot expired: ask for another";
        return 403;
    }
    if (!q->has_length || q->chunked) {
        *why = "a Content-Length is needed";
        return 411;
    }
    if (q->content_length != size) {
        *why = "the size is not the one the slot was given for";
        return 403;
    }
    if (size > cfg->max_file_size) {
        *why = "larger than this server's max_file_size";
        return 413;
    }
    const char *ctype = http_request_header(q, "content-type");
    if (*type && (!ctype || strcmp(ctype, type) != 0)) {
        *why = "the Content-Type is not the one the slot was given for";
        return 403;
    }
    upload_put *u = mem_zalloc(sizeof *u);
    u->size = size;
    u->meta_len = (size_t)snprintf(u->meta, sizeof u->meta, "%s\n%s",
                                   *type ? type : "application/octet-stream", name);
    slot_dir(cfg, slot, u->dir, sizeof u->dir);
    if (mkdir(u->dir, 0750) != 0) {
        int e = errno;
        free(u);
        *why = e == EEXIST ? "this slot was used" : "the file cannot be stored";
        if (e != EEXIST)
            log_warn("upload: slot %s: mkdir: %s", slot, strerror(e));
        return e == EEXIST ? 409 : e == ENOSPC || e == EDQUOT ? 507 : 500;
    }
    char part[4200];
    snprintf(part, sizeof part, "%s/data.part", u->dir);
    u->fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (u->fd < 0) {
        log_warn("upload: slot %s: %s", slot, strerror(errno));
        rmdir(u->dir);
        free(u);
        *why = "the file cannot be stored";
        return 500;
    }
    *out = u;
    return 0;
}

int upload_put_write(upload_put *u, const void *data, size_t len)
{
    if (u->written + len > u->size)
        return 413;
    const char *p = data;
    while (len) {
        ssize_t w = write(u->fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errno == ENOSPC || errno == EDQUOT ? 507 : 500;
        p += w;
        len -= (size_t)w;
        u->written += (uint64_t)w;
    }
    return 0;
}

static void remove_slot(const char *dir)
{
    static const char *const files[] = {"data.part", "data", "meta", NULL};
    char path[4200];
    for (const char *const *f = files; *f; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, *f);
        unlink(path);
    }
    rmdir(dir);
}

void upload_put_abort(upload_put *u)
{
    if (!u)
        return;
    close(u->fd);
    remove_slot(u->dir);
    free(u);
}

int upload_put_finish(upload_put *u, const char **why)
{
    int status = 201;
    char path[4200], part[4200];
    if (u->written != u->size) {
        status = 400;
        *why = "the body is shorter than its Content-Length";
    }
    if (status == 201 && close(u->fd) != 0)
        status = 500;
    u->fd = -1;
    if (status == 201) {
        snprintf(path, sizeof path, "%s/meta", u->dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0 || write(fd, u->meta, u->meta_len) != (ssize_t)u->meta_len)
            status = 507;
        if (fd >= 0 && close(fd) != 0)
            status = 507;
    }
    if (status == 201) {
        snprintf(part, sizeof part, "%s/data.part", u->dir);
        snprintf(path, sizeof path, "%s/data", u->dir);
        if (rename(part, path) != 0)
            status = 500;
    }
    if (status != 201) {
        if (status >= 500)
            *why = "the file cannot be stored";
        remove_slot(u->dir);
    }
    free(u);
    return status;
}

/* ---- GET ---- */

/* "bytes=a-b", "bytes=a-", "bytes=-n" against size: false when it is not one range we serve
 * (then the whole file goes, as RFC 9110 allows); *bad when it is one but outside the file. */
static bool parse_range(const char *range, uint64_t size, uint64_t *from, uint64_t *to, bool *bad)
{
    *bad = false;
    if (strncmp(range, "bytes=", 6) != 0 || strchr(range, ','))
        return false;
    const char *r = range + 6;
    const char *dash = strchr(r, '-');
    if (!dash)
        return false;
    char a[24] = "", b[24] = "";
    size_t na = (size_t)(dash - r), nb = strlen(dash + 1);
    if (na >= sizeof a || nb >= sizeof b)
        return false;
    memcpy(a, r, na);
    memcpy(b, dash + 1, nb);
    uint64_t x, y;
    if (!na) {
        if (!parse_u64(b, &y))
            return false;
        if (!y || !size) {
            *bad = true;
            return true;
        }
        *from = y >= size ? 0 : size - y;
        *to = size - 1;
        return true;
    }
    if (!parse_u64(a, &x) || (nb && !parse_u64(b, &y)))
        return false;
    if (!nb)
        y = size ? size - 1 : 0;
    if (x >= size || y < x) {
        *bad = y >= x || !nb;
        return *bad;
    }
    *from = x;
    *to = y >= size ? size - 1 : y;
    return true;
}

/* "inline" for what browsers show safely, else "attachment"; the name as RFC 6266's filename*. */
static void disposition(buf *out, const char *type, const char *name)
{
    bool show = strncmp(type, "image/", 6) == 0 || strncmp(type, "audio/", 6) == 0 ||
                strncmp(type, "video/", 6) == 0 || strcmp(type, "text/plain") == 0;
    /* Never SVG inline: it is a document that runs scripts. */
    if (strncmp(type, "image/svg", 9) == 0)
        show = false;
    buf_appendf(out, "Content-Disposition: %s; filename*=UTF-8''", show ? "inline" : "attachment");
    upload_url_escape(out, name);
    buf_append(out, "\r\n", 2);
}

int upload_get_begin(const front_upload *cfg, const char *rel, const char *range, bool head_only,
                     buf *headers, upload_get **out)
{
    char slot[SLOT_HEX + 1], name[NAME_MAX_BYTES + 1], dir[4096], path[4200];
    char meta[TYPE_MAX_BYTES + NAME_MAX_BYTES + 3];
    *out = NULL;
    if (!split_target(rel, slot, name))
        return 404;
    slot_dir(cfg, slot, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/meta", dir);
    int mfd = open(path, O_RDONLY | O_CLOEXEC);
    if (mfd < 0)
        return 404;
    ssize_t n = read(mfd, meta, sizeof meta - 1);
    close(mfd);
    if (n <= 0)
        return 404;
    meta[n] = '\0';
    char *nl = strchr(meta, '\n');
    if (!nl || strcmp(nl + 1, name) != 0)
        return 404;
    *nl = '\0';
    snprintf(path, sizeof path, "%s/data", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return 404;
    }
    uint64_t size = (uint64_t)st.st_size, from = 0, to = size ? size - 1 : 0;
    bool bad = false, partial = range && parse_range(range, size, &from, &to, &bad);
    if (bad) {
        close(fd);
        buf_appendf(headers, "Content-Range: bytes */%" PRIu64 "\r\n", size);
        return 416;
    }
    uint64_t len = size ? to - from + 1 : 0;
    buf_appendf(headers, "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n", meta, len);
    if (partial)
        buf_appendf(headers, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", from,
                    to, size);
    disposition(headers, meta, name);
    buf_appendf(headers, "Accept-Ranges: bytes\r\nCache-Control: public, max-age=31536000, "
                "immutable\r\nX-Content-Type-Options: nosniff\r\n"
                "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n");
    if (head_only || !len || lseek(fd, (off_t)from, SEEK_SET) < 0) {
        close(fd);
        return partial ? 206 : 200;
    }
    upload_get *g = mem_zalloc(sizeof *g);
    g->fd = fd;
    g->left = len;
    *out = g;
    return partial ? 206 : 200;
}

ssize_t upload_get_read(upload_get *g, buf *out, size_t max)
{
    if (!g->left)
        return 0;
    size_t want = max < g->left ? max : (size_t)g->left;
    char *p = buf_reserve(out, want);
    ssize_t n;
    do
        n = read(g->fd, p, want);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;     /* shorter than it was: truncated under us */
    buf_commit(out, (size_t)n);
    g->left -= (uint64_t)n;
    return n;
}

ssize_t upload_get_send(upload_get *g, int sock, size_t max)
{
    if (!g->left)
        return 0;
    size_t want = max < g->left ? max : (size_t)g->left;
    ssize_t n;
    do
        n = sendfile(sock, g->fd, NULL, want);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        errno = EIO;   /* shorter than it was: truncated under us */
    if (n <= 0)
        return -1;
    g->left -= (uint64_t)n;
    return n;
}

void upload_get_free(upload_get *g)
{
    if (!g)
        return;
    close(g->fd);
    free(g);
}

/* ---- the sweep ---- */

unsigned upload_sweep(const front_upload *cfg, int64_t now)
{
    DIR *d = opendir(cfg->dir);
    if (!d)
        return 0;
    unsigned deleted = 0;
    struct dirent *e;
    char dir[4096], path[4200];
    while ((e = readdir(d))) {
        if (strlen(e->d_name) != SLOT_HEX)
            continue;
        slot_dir(cfg, e->d_name, dir, sizeof dir);
        struct stat st;
        snprintf(path, sizeof path, "%s/meta", dir);
        bool done = stat(path, &st) == 0;
        if (!done && stat(dir, &st) != 0)
            continue;
        int64_t age = now - (int64_t)st.st_mtime;
        if (age > (done ? cfg->expire_after : ABANDONED_SECONDS)) {
            remove_slot(dir);
            deleted++;
        }
    }
    closedir(d);
    return deleted;
}

struct upload_sweeper {
    const front_upload *cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
};

static void *sweeper_main(void *arg)
{
    upload_sweeper *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        pthread_mutex_unlock(&s->lock);
        unsigned n = upload_sweep(s->cfg, (int64_t)time(NULL));
        if (n)
            log_info("upload: %u expired file%s deleted", n, n == 1 ? "" : "s");
        pthread_mutex_lock(&s->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += UPLOAD_SWEEP_SECONDS;
        while (!s->stop && pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

upload_sweeper *upload_sweeper_start(const front_upload *cfg)
{
    upload_sweeper *s = mem_zalloc(sizeof *s);
    s->cfg = cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void upload_sweeper_stop(upload_sweeper *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
