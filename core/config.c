/* core/config.c — the configuration loader behind core/config.h: reading a file into an element
 * tree with expat, path lookups, typed values and the one kept error.
 */
#include "core/config.h"

#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"

#define CONFIG_MAX_BYTES (16u << 20)   /* far beyond any real configuration file */
#define CONFIG_PATH_MAX 256            /* longest element path handled */
#define CONFIG_MAX_DEPTH 32

struct config {
    char *file;
    xml_arena *arena;                  /* the tree and every string handed out */
    xml_node *root;
    bool failed;
    config_error err;                  /* the first error, once failed */
};

/* ---- errors ---------------------------------------------------------------------------------- */

static void __attribute__((format(printf, 5, 0)))
error_vset(config_error *err, const char *file, unsigned line, const char *element,
                       const char *fmt, va_list ap)
{
    snprintf(err->file, sizeof(err->file), "%s", file);
    err->line = line;
    snprintf(err->element, sizeof(err->element), "%s", element ? element : "");
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    char where[32] = "";
    if (line)
        snprintf(where, sizeof(where), ":%u", line);
    if (err->element[0])
        snprintf(err->text, sizeof(err->text), "%s%s: <%s>: %s", err->file, where, err->element,
                 err->message);
    else
        snprintf(err->text, sizeof(err->text), "%s%s: %s", err->file, where, err->message);
}

static void __attribute__((format(printf, 5, 6)))
error_set(config_error *err, const char *file, unsigned line, const char *element,
          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, file, line, element, fmt, ap);
    va_end(ap);
}

/* Appends s to the path in out (capacity CONFIG_PATH_MAX), with a '/' unless out is empty.
 * Returns false when it does not fit. */
static bool path_append(char *out, const char *s)
{
    size_t len = strlen(out), add = strlen(s) + (len ? 1 : 0);
    if (len + add >= CONFIG_PATH_MAX)
        return false;
    if (len)
        out[len++] = '/';
    strcpy(out + len, s);
    return true;
}

/* The path of el from the root, as errors show it: the root's own name for the root. */
static void node_path(const config *cfg, const xml_node *el, char out[CONFIG_PATH_MAX])
{
    out[0] = '\0';
    if (el == cfg->root) {
        path_append(out, el->name);
        return;
    }
    const xml_node *chain[CONFIG_MAX_DEPTH];
    size_t depth = 0;
    for (const xml_node *p = el; p && p != cfg->root; p = p->parent)
        chain[depth++] = p;
    while (depth--)
        if (!path_append(out, chain[depth]->name))
            break;
}

static void __attribute__((format(printf, 3, 0)))
config_vfail(config *cfg, const xml_node *node, const char *fmt, va_list ap)
{
    if (cfg->failed)
        return;
    cfg->failed = true;
    if (!node)
        node = cfg->root;
    char path[CONFIG_PATH_MAX];
    node_path(cfg, node, path);
    error_vset(&cfg->err, cfg->file, node->line, path, fmt, ap);
}

void config_fail(config *cfg, const xml_node *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_vfail(cfg, node, fmt, ap);
    va_end(ap);
}

int config_check(const config *cfg, config_error *err)
{
    if (!cfg->failed)
        return 0;
    *err = cfg->err;
    return -1;
}

/* ---- loading --------------------------------------------------------------------------------- */

typedef struct load_state {
    XML_Parser parser;
    xml_builder builder;
    const char *file;
    config_error *err;
    bool refused;                      /* err already holds why parsing stopped */
} load_state;

static uint32_t current_line(const load_state *ls)
{
    return (uint32_t)XML_GetCurrentLineNumber(ls->parser);
}

static void XMLCALL on_start(void *data, const char *name, const char **atts)
{
    load_state *ls = data;
    if (ls->builder.depth >= CONFIG_MAX_DEPTH && !ls->refused) {
        error_set(ls->err, ls->file, current_line(ls), NULL, "elements nested deeper than %d",
                  CONFIG_MAX_DEPTH);
        ls->refused = true;
        XML_StopParser(ls->parser, XML_FALSE);
        return;
    }
    xml_builder_start(&ls->builder, name, atts, current_line(ls));
}

static void XMLCALL on_end(void *data, const char *name)
{
    load_state *ls = data;
    xml_builder_end(&ls->builder);
}

static void XMLCALL on_text(void *data, const char *s, int len)
{
    load_state *ls = data;
    xml_builder_text(&ls->builder, s, (size_t)len, current_line(ls));
}

/* A DOCTYPE is where entities (and with them entity expansion attacks and external files) come
 * from; a configuration file has no use for one. */
static void XMLCALL on_doctype(void *data, const char *name, const char *sysid, const char *pubid,
                               int has_internal_subset)
{
    load_state *ls = data;
    error_set(ls->err, ls->file, current_line(ls), NULL,
              "a DOCTYPE is not allowed in a configuration file");
    ls->refused = true;
    XML_StopParser(ls->parser, XML_FALSE);
}

/* Reads the whole file into *buf (NUL-terminated, caller frees). */
static int read_file(const char *path, char **buf, size_t *len, config_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        error_set(err, path, 0, NULL, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES) {
        if (S_ISREG(st.st_mode))
            error_set(err, path, 0, NULL, "file too large (over %u bytes)", CONFIG_MAX_BYTES);
        else
            error_set(err, path, 0, NULL, "not a regular file");
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *data = mem_alloc(cap);
    for (;;) {
        ssize_t r = read(fd, data + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            error_set(err, path, 0, NULL, "cannot read: %s", strerror(errno));
            free(data);
            close(fd);
            return -1;
        }
        if (r == 0 || n + (size_t)r == cap - 1) {
            n += (size_t)r;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    data[n] = '\0';
    *buf = data;
    *len = n;
    return 0;
}

int config_load(const char *path, config **out, config_error *err)
{
    *out = NULL;
    char *data;
    size_t len;
    if (read_file(path, &data, &len, err) < 0)
        return -1;

    xml_arena *arena = xml_arena_new(len * 2 + 4096);
    load_state ls = { .file = path, .err = err };
    ls.parser = XML_ParserCreateNS(NULL, XML_NS_SEP);
    if (!ls.parser) {
        fprintf(stderr, "jabshard: out of memory creating an XML parser\n");
        abort();
    }
    xml_builder_init(&ls.builder, arena);
    XML_SetUserData(ls.parser, &ls);
    XML_SetElementHandler(ls.parser, on_start, on_end);
    XML_SetCharacterDataHandler(ls.parser, on_text);
    XML_SetStartDoctypeDeclHandler(ls.parser, on_doctype);

    int rc = 0;
    if (XML_Parse(ls.parser, data, (int)len, XML_TRUE) != XML_STATUS_OK) {
        if (!ls.refused)
            error_set(err, path, (unsigned)XML_GetCurrentLineNumber(ls.parser), NULL,
                      "XML syntax error: %s (column %lu)",
                      XML_ErrorString(XML_GetErrorCode(ls.parser)),
                      (unsigned long)XML_GetCurrentColumnNumber(ls.parser) + 1);
        rc = -1;
    }
    xml_node *root = ls.builder.root;
    XML_ParserFree(ls.parser);
    xml_builder_free(&ls.builder);
    free(data);
    if (rc < 0) {
        xml_arena_free(arena);
        return -1;
    }
    config *cfg = mem_zalloc(sizeof(*cfg));
    cfg->file = mem_strdup(path);
    cfg->arena = arena;
    cfg->root = root;
    *out = cfg;
    return 0;
}

void config_free(config *cfg)
{
    if (!cfg)
        return;
    xml_arena_free(cfg->arena);
    free(cfg->file);
    free(cfg);
}

const char *config_file(const config *cfg)
{
    return cfg->file;
}

/* ---- the vocabulary -------------------------------------------------------------------------- */

static bool path_known(const char *path, const char *const known[])
{
    size_t len = strlen(path);
    for (size_t i = 0; known[i]; i++)
        if (strncmp(known[i], path, len) == 0 && (known[i][len] == '\0' || known[i][len] == '/'))
            return true;
    return false;
}

static bool check_children(config *cfg, const xml_node *el, char path[CONFIG_PATH_MAX],
                           const char *const known[])
{
    size_t len = strlen(path);
    for (const xml_node *c = xml_child(el, NULL, NULL); c; c = xml_next(c, NULL, NULL)) {
        bool fits = path_append(path, c->name);
        if (!fits || !path_known(path, known)) {
            config_fail(cfg, c, "unknown element");
            return false;
        }
        if (!check_children(cfg, c, path, known))
            return false;
        path[len] = '\0';
    }
    return true;
}

int config_declare(config *cfg, const char *root_name, const char *const known[])
{
    if (cfg->failed)
        return -1;
    if (root_name && strcmp(cfg->root->name, root_name) != 0) {
        config_fail(cfg, cfg->root, "expected the root element <%s>", root_name);
        return -1;
    }
    char path[CONFIG_PATH_MAX] = "";
    return check_children(cfg, cfg->root, path, known) ? 0 : -1;
}

/* ---- lookups --------------------------------------------------------------------------------- */

typedef struct lookup {
    const xml_node *el;       /* the element at path, or the attribute's owner */
    const char *attr;         /* attribute name when path ends in "@name" */
    const char *value;        /* that attribute's value */
    const xml_node *nearest;  /* when absent: the deepest element present along path */
    const char *missing;      /* when absent: the rest of path, from the first missing step */
} lookup;

/* Walks path from node. Returns true when everything on it is present. A step that would have to
 * choose between repeated elements is an error; the last step only when single is set. */
static bool lookup_path(config *cfg, const xml_node *node, const char *path, bool single,
                        lookup *lk)
{
    memset(lk, 0, sizeof(*lk));
    const xml_node *cur = node ? node : cfg->root;
    const char *p = path ? path : "";
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char step[CONFIG_PATH_MAX];
        snprintf(step, sizeof(step), "%.*s", (int)n, p);
        if (step[0] == '@') {  /* always the last step */
            lk->el = cur;
            lk->attr = p + 1;
            lk->value = xml_attr_get(cur, lk->attr);
            if (!lk->value) {
                lk->nearest = cur;
                lk->missing = p;
            }
            return lk->value != NULL;
        }
        const xml_node *child = xml_child(cur, NULL, step);
        if (!child) {
            lk->nearest = cur;
            lk->missing = p;
            return false;
        }
        const xml_node *again = xml_next(child, NULL, step);
        if (again && (slash || single)) {
            config_fail(cfg, again, "repeated element (the first is on line %u)",
                        (unsigned)child->line);
            lk->nearest = cur;
            lk->missing = p;
            return false;
        }
        cur = child;
        p = slash ? slash + 1 : p + n;
    }
    lk->el = cur;
    return true;
}

void config_log(config *cfg, log_target *target, const char **path, log_level *level)
{
    static const char *const targets[] = {"stderr", "file", "syslog", NULL};
    static const char *const levels[] = {"debug", "info", "notice", "warn", "error", NULL};
    *target = (log_target)config_enum(cfg, NULL, "log/target", targets, LOG_TO_STDERR);
    *path = config_str(cfg, NULL, "log/path", NULL);
    *level = (log_level)config_enum(cfg, NULL, "log/level", levels, LL_INFO);
    if (*target == LOG_TO_FILE && !*path)
        config_require(cfg, NULL, "log/path");
}

bool config_require(config *cfg, const xml_node *node, const char *path)
{
    lookup lk;
    if (lookup_path(cfg, node, path, true, &lk))
        return true;
    if (lk.missing) {
        const char *at = strchr(lk.missing, '@');
        if (at == lk.missing)
            config_fail(cfg, lk.nearest, "missing required attribute '%s'", at + 1);
        else
            config_fail(cfg, lk.nearest, "missing required element <%.*s>",
                        (int)(at ? at - lk.missing - 1 : (long)strlen(lk.missing)), lk.missing);
    }
    return false;
}

static void __attribute__((format(printf, 3, 4)))
value_fail(config *cfg, const lookup *lk, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lk->attr)
        config_fail(cfg, lk->el, "attribute '%s': %s", lk->attr, msg);
    else
        config_fail(cfg, lk->el, "%s", msg);
}

static const char *trimmed(config *cfg, const char *s)
{
    static const char space[] = " \t\r\n";
    s += strspn(s, space);
    size_t len = strlen(s);
    while (len && strchr(space, s[len - 1]))
        len--;
    return s[len] ? xml_arena_strndup(cfg->arena, s, len) : s;
}

/* The trimmed value at path; NULL when absent, or after an error (kept or earlier). */
static const char *value_at(config *cfg, const xml_node *node, const char *path, lookup *lk)
{
    if (cfg->failed || !lookup_path(cfg, node, path, true, lk))
        return NULL;
    if (lk->attr)
        return trimmed(cfg, lk->value);
    const xml_node *child = xml_child(lk->el, NULL, NULL);
    if (child) {
        value_fail(cfg, lk, "expected a value, found the element <%s>", child->name);
        return NULL;
    }
    return trimmed(cfg, xml_text(cfg->arena, lk->el));
}

const char *config_str(config *cfg, const xml_node *node, const char *path, const char *def)
{
    lookup lk;
    const char *v = value_at(cfg, node, path, &lk);
    return v ? v : def;
}

/* Parses v as a decimal integer in [min, max]; otherwise records "expected <what>, got "v"". */
static bool parse_int(config *cfg, const lookup *lk, const char *v, long long min, long long max,
                      const char *what, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    bool digits = v[0] >= '0' && v[0] <= '9';
    if ((v[0] == '-' || v[0] == '+') && v[1] >= '0' && v[1] <= '9')
        digits = true;
    if (!digits || *end) {
        value_fail(cfg, lk, "expected %s, got \"%s\"", what, v);
        return false;
    }
    if (errno == ERANGE || n < min || n > max) {
        value_fail(cfg, lk, "expected an integer from %lld to %lld, got %s", min, max, v);
        return false;
    }
    *out = n;
    return true;
}

long long config_int(config *cfg, const xml_node *node, const char *path, long long def,
                     long long min, long long max)
{
    lookup lk;
    const char *v = value_at(cfg, node, path, &lk);
    const char *what = min > 0 ? "a positive integer" : min == 0 ? "a non-negative integer"
                                                                 : "an integer";
    long long n;
    return v && parse_int(cfg, &lk, v, min, max, what, &n) ? n : def;
}

int config_port(config *cfg, const xml_node *node, const char *path, int def)
{
    lookup lk;
    const char *v = value_at(cfg, node, path, &lk);
    if (!v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end || errno == ERANGE || n < 1 || n > 65535) {
        value_fail(cfg, &lk, "expected a port number (1-65535), got \"%s\"", v);
        return def;
    }
    return (int)n;
}

bool config_bool(config *cfg, const xml_node *node, const char *path, bool def)
{
    static const char *const yes[] = { "", "true", "yes", "1" };
    static const char *const no[] = { "false", "no", "0" };
    lookup lk;
    const char *v = value_at(cfg, node, path, &lk);
    if (!v)
        return def;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcasecmp(v, yes[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (strcasecmp(v, no[i]) == 0)
            return false;
    value_fail(cfg, &lk, "expected true or false (or yes/no, 1/0), got \"%s\"", v);
    return def;
}

int config_enum(config *cfg, const xml_node *node, const char *path, const char *const choices[],
                int def)
{
    lookup lk;
    const char *v = value_at(cfg, node, path, &lk);
    if (!v)
        return def;
    char list[192] = "";
    size_t len = 0;
    for (int i = 0; choices[i]; i++) {
        if (strcmp(v, choices[i]) == 0)
            return i;
        int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", choices[i]);
        if (w > 0 && (size_t)w < sizeof(list) - len)
            len += (size_t)w;
    }
    value_fail(cfg, &lk, "expected one of %s; got \"%s\"", list, v);
    return def;
}

xml_node *config_first(config *cfg, const xml_node *node, const char *path)
{
    lookup lk;
    if (!lookup_path(cfg, node, path, false, &lk) || lk.attr)
        return NULL;
    return (xml_node *)lk.el;
}

xml_node *config_next(const xml_node *el)
{
    return xml_next(el, NULL, el->name);
}
