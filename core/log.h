/* core/log.h — one line per event, to stderr, a file or syslog, with repeats rate-limited.
 *
 * Every thread may log. A line is written with a single write(2) so lines from different
 * threads never interleave. Each call site (identified by its format string) may emit a burst
 * of LOG_BURST lines, then one line per second; what was suppressed is counted and reported
 * ("... N similar lines suppressed") on the next line that site emits.
 */
#ifndef JABSHARD_CORE_LOG_H
#define JABSHARD_CORE_LOG_H

#include <stdbool.h>

typedef enum { LL_DEBUG, LL_INFO, LL_NOTICE, LL_WARN, LL_ERROR } log_level;
typedef enum { LOG_TO_STDERR, LOG_TO_FILE, LOG_TO_SYSLOG } log_target;

#define LOG_BURST 10

/* target_arg: the file path for LOG_TO_FILE, ignored otherwise. Returns 0, or -1 with errno. */
int log_open(const char *ident, log_target target, const char *target_arg, log_level min);
/* Reopens the log file (SIGHUP, after rotation). */
int log_reopen(void);
void log_set_level(log_level min);
bool log_enabled(log_level level);
/* "debug", "info", "notice", "warn", "error" -> level; -1 when unknown. */
int log_level_parse(const char *name);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_msg without the per-call-site limit, for lines the caller limits itself with a finer key:
 * the front's security events are budgeted per client address, so that one address's flood
 * cannot crowd another's lines (what fail2ban acts on) out of a shared per-site budget. */
void log_msg_unthrottled(log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LL_DEBUG)) log_msg(LL_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_msg(LL_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LL_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LL_ERROR, __VA_ARGS__)

#endif
