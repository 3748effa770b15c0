/* core/config.h — XML configuration files: loading, typed values by path, and errors that name the
 * file, the line and the element.
 *
 * A file is parsed whole with expat in namespace mode into a core/xml.h tree whose nodes carry
 * their source lines. Elements are matched by local name; a namespace on the root is allowed and
 * ignored. Comments, processing instructions and the XML declaration are allowed; a DOCTYPE (and
 * with it any entity declaration) is refused.
 *
 * Reading: a getter takes a node (NULL = the root element) and a path relative to it: element
 * names separated by '/', optionally ending in "@name" for an attribute ("sm/host",
 * "accept/port", "@id"; NULL or "" = the node itself). Text is trimmed of surrounding whitespace.
 * An absent element or attribute yields the default. A path that would have to choose between two
 * repeated elements is an error (use config_first/config_next where repetition is allowed).
 *
 * Errors: the first one (bad value, repeated element, unknown element, missing required element,
 * or the caller's own via config_fail) is kept in the config; later getters return their defaults.
 * A program reads everything, calls config_check once and, if it fails, prints err.text and exits
 * with status 2. The library never prints or exits.
 *
 * Booleans: true/yes/1 and false/no/0, in any case; an empty element is true, so a flag can be a
 * bare element (<register/>). Durations and sizes are plain integers in the unit the caller's
 * documentation names (seconds, bytes).
 *
 * Thread rules: a config, and every string it hands out, belongs to one thread; strings live until
 * config_free, so whatever must outlive a reload is copied.
 */
#ifndef JABSHARD_CORE_CONFIG_H
#define JABSHARD_CORE_CONFIG_H

#include <stdbool.h>

#include "core/log.h"
#include "core/xml.h"

typedef struct config config;

typedef struct config_error {
    char file[256];
    unsigned line;          /* 0 when the error concerns the whole file (it cannot be read) */
    char element[128];      /* path from the root ("local/ssl/port"; the root's own name for the
                             * root), "" when the error is not about an element */
    char message[256];
    char text[768];         /* "file:line: <element>: message", ready to print */
} config_error;

/* Reads and parses path. Returns 0 with *out set, or -1 with *out NULL and err filled (unreadable
 * file, XML syntax error, DOCTYPE). */
int config_load(const char *path, config **out, config_error *err);
void config_free(config *cfg);
const char *config_file(const config *cfg);

/* Declares the file's vocabulary: the root element's name (NULL: any) and a NULL-terminated list
 * of element paths relative to the root; each path's ancestors are known too. Any other element
 * is an error naming its line, so a misspelt element is never silently ignored. Attributes are
 * not checked. Returns 0, or -1 with the error kept. */
int config_declare(config *cfg, const char *root_name, const char *const known[]);

/* Returns 0 if no error has been kept, else -1 with a copy of the first error in *err. */
int config_check(const config *cfg, config_error *err);

/* Records an error about node (NULL: the root) unless one is already kept: for the caller's own
 * checks ("unknown driver", "max_fds below 16"). */
void config_fail(config *cfg, const xml_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* <log> as every program's file has it: <target> (stderr, the default; file, which then needs
 * <path>; syslog), <path> and <level> (debug, info (default), notice, warn, error). */
void config_log(config *cfg, log_target *target, const char **path, log_level *level);

/* Errors when path is absent ("missing required element <secret>", on the line of the closest
 * element that is present). Returns whether it is present. */
bool config_require(config *cfg, const xml_node *node, const char *path);

/* Text at path, or def (which may be NULL) when absent. An element holding child elements where a
 * value is expected is an error. */
const char *config_str(config *cfg, const xml_node *node, const char *path, const char *def);
/* A decimal integer in [min, max]; garbage or a value out of range is an error. */
long long config_int(config *cfg, const xml_node *node, const char *path, long long def,
                     long long min, long long max);
/* A TCP port, 1..65535. */
int config_port(config *cfg, const xml_node *node, const char *path, int def);
bool config_bool(config *cfg, const xml_node *node, const char *path, bool def);
/* The index of the text in the NULL-terminated choices (exact match); anything else is an error
 * listing the choices. */
int config_enum(config *cfg, const xml_node *node, const char *path, const char *const choices[],
                int def);

/* Repeated elements: the first element at path (NULL if none), then each next sibling of the
 * same name: for (n = config_first(cfg, NULL, "local/id"); n; n = config_next(n)). */
xml_node *config_first(config *cfg, const xml_node *node, const char *path);
xml_node *config_next(const xml_node *el);

#endif
