/* shard/server_caps.c — the server's entity capabilities per host (see server_caps.h). */
#include "shard/server_caps.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define HOSTS_MAX 1024
#define HOST_MAX 1023

typedef struct caps_table {
    struct caps_table *older;   /* kept until the end: a reader may still hold it */
    size_t n;
    char **hosts, **vers;
} caps_table;

struct server_caps {
    _Atomic(caps_table *) current;
};

server_caps *server_caps_new(void)
{
    return mem_zalloc(sizeof(server_caps));
}

static void table_free(caps_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->hosts[i]);
        free(t->vers[i]);
    }
    free(t->hosts);
    free(t->vers);
    free(t);
}

void server_caps_free(server_caps *c)
{
    if (!c)
        return;
    caps_table *t = atomic_load(&c->current);
    while (t) {
        caps_table *older = t->older;
        table_free(t);
        t = older;
    }
    free(c);
}

/* The next NUL-terminated string of at most max bytes at *p (before end), or NULL. */
static const char *next_str(const uint8_t **p, const uint8_t *end, size_t max)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    if (!nul || nul == *p || (size_t)(nul - *p) > max)
        return NULL;
    const char *s = (const char *)*p;
    *p = nul + 1;
    return s;
}

static bool base64ish(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '+' || *s == '/' || *s == '='))
            return false;
    return true;
}

static bool same(const caps_table *a, const caps_table *b)
{
    if (!a || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->hosts[i], b->hosts[i]) || strcmp(a->vers[i], b->vers[i]))
            return false;
    return true;
}

bool server_caps_update(server_caps *c, const uint8_t *body, size_t len)
{
    caps_table *t = mem_zalloc(sizeof *t);
    const uint8_t *p = body, *end = body + len;
    bool ok = true;
    while (ok && p < end) {
        const char *host = next_str(&p, end, HOST_MAX);
        const char *ver = host ? next_str(&p, end, SERVER_CAPS_VER_MAX - 1) : NULL;
        ok = ver && base64ish(ver) && t->n < HOSTS_MAX;
        if (ok) {
            t->hosts = mem_realloc(t->hosts, (t->n + 1) * sizeof *t->hosts);
            t->vers = mem_realloc(t->vers, (t->n + 1) * sizeof *t->vers);
            t->hosts[t->n] = mem_strdup(host);
            t->vers[t->n++] = mem_strdup(ver);
        }
    }
    caps_table *cur = atomic_load(&c->current);
    if (!ok || same(cur, t)) {
        table_free(t);
        return ok;
    }
    t->older = cur;
    atomic_store(&c->current, t);
    return true;
}

bool server_caps_ver(const server_caps *c, const char *host, char *out, size_t size)
{
    caps_table *t = c ? atomic_load(&c->current) : NULL;
    for (size_t i = 0; t && i < t->n; i++)
        if (strcmp(t->hosts[i], host) == 0 && strlen(t->vers[i]) < size) {
            strcpy(out, t->vers[i]);
            return true;
        }
    return false;
}
