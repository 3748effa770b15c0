/* tests/unit/test_log.c — core/log: line format, levels, the per-site burst limit and its
 * "suppressed" report (on a fake clock), lines exempt from it (log_msg_unthrottled), escaping, truncation, reopen after rotation, syslog
 * priorities and whole lines under concurrent writers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "tests/support/tmp.h"

/* The rate limiter's clock hook (core/log.c). */
void log_test_set_clock(uint64_t (*now_ms)(void));

static char *dir, *path;

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

/* Reads the whole log file; the caller frees. */
static char *slurp(const char *file)
{
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Returns the message part of line i (0-based), after "level: ", in a static buffer. */
static const char *message_of_line(const char *text, int i)
{
    static char out[8192];
    const char *p = text;
    while (i-- > 0) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *end = strchr(p, '\n');
    assert_non_null(end);
    const char *colon = strstr(p, ": ");
    assert_true(colon && colon < end);
    size_t len = (size_t)(end - colon - 2);
    assert_true(len < sizeof(out));
    memcpy(out, colon + 2, len);
    out[len] = '\0';
    return out;
}

static int setup(void **state)
{
    dir = tmp_dir("test_log");
    if (!dir)
        return -1;
    path = tmp_path(dir, "test.log");
    return 0;
}

static int teardown(void **state)
{
    free(path);
    tmp_dir_remove(dir);
    return 0;
}

/* Each test starts with an empty file, debug level and a fresh fake clock. */
static int fresh_log(void **state)
{
    unlink(path);
    fake_now = 1000000;
    log_test_set_clock(fake_clock);
    return log_open("jabshard-c2s", LOG_TO_FILE, path, LL_DEBUG);
}

static int back_to_stderr(void **state)
{
    log_test_set_clock(NULL);
    return log_open("jabshard", LOG_TO_STDERR, NULL, LL_INFO);
}

static void test_format(void **state)
{
    log_warn("hello %d from %s", 42, "tests");
    char *text = slurp(path);
    char pattern[256];
    snprintf(pattern, sizeof(pattern),
             "^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\\.[0-9]{3}Z "
             "jabshard-c2s\\[%ld\\] warn: hello 42 from tests\n$", (long)getpid());
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
    regmatch_t m[7];
    assert_int_equal(regexec(&re, text, 7, m, 0), 0);
    regfree(&re);
    /* The timestamp is UTC: parsed back with timegm it names the present, not a zone away. */
    struct tm tm = { 0 };
    int f[6];
    for (int i = 0; i < 6; i++)
        f[i] = atoi(text + m[i + 1].rm_so);
    tm.tm_year = f[0] - 1900;
    tm.tm_mon = f[1] - 1;
    tm.tm_mday = f[2];
    tm.tm_hour = f[3];
    tm.tm_min = f[4];
    tm.tm_sec = f[5];
    time_t stamp = timegm(&tm);
    assert_true(llabs((long long)(stamp - time(NULL))) < 600);
    free(text);
}

static void test_level_names(void **state)
{
    log_debug("d");
    log_info("i");
    log_notice("n");
    log_warn("w");
    log_error("e");
    char *text = slurp(path);
    assert_int_equal(count_lines(text), 5);
    assert_string_equal(message_of_line(text, 0), "d");
    assert_non_null(strstr(text, "] debug: d\n"));
    assert_non_null(strstr(text, "] info: i\n"));
    assert_non_null(strstr(text, "] notice: n\n"));
    assert_non_null(strstr(text, "] warn: w\n"));
    assert_non_null(strstr(text, "] error: e\n"));
    free(text);

    static const char *const names[] = { "debug", "info", "notice", "warn", "error" };
    for (int i = 0; i < 5; i++)
        assert_int_equal(log_level_parse(names[i]), i);
    assert_int_equal(log_level_parse("warning"), -1);
    assert_int_equal(log_level_parse("INFO"), -1);
    assert_int_equal(log_level_parse(""), -1);
}

static int evaluated;
static int side_effect(void)
{
    return ++evaluated;
}

static void test_min_level(void **state)
{
    log_set_level(LL_WARN);
    assert_false(log_enabled(LL_DEBUG));
    assert_false(log_enabled(LL_INFO));
    assert_false(log_enabled(LL_NOTICE));
    assert_true(log_enabled(LL_WARN));
    assert_true(log_enabled(LL_ERROR));
    evaluated = 0;
    log_debug("not evaluated %d", side_effect());
    assert_int_equal(evaluated, 0);
    log_info("dropped");
    log_notice("dropped too");
    log_warn("kept");
    log_error("kept too");
    /* Dropped by level, a site spends none of its burst. */
    for (int i = 0; i < 3 * LOG_BURST; i++)
        log_info("below the level %d", i);
    log_set_level(LL_INFO);
    for (int i = 0; i < LOG_BURST; i++)
        log_info("below the level %d", i);
    char *text = slurp(path);
    assert_int_equal(count_lines(text), 2 + LOG_BURST);
    assert_string_equal(message_of_line(text, 0), "kept");
    assert_string_equal(message_of_line(text, 1), "kept too");
    assert_string_equal(message_of_line(text, 2), "below the level 0");
    assert_null(strstr(text, "dropped"));
    assert_null(strstr(text, "suppressed"));
    free(text);
}

static void log_from_site_a(int i)
{
    log_warn("site A line %d", i);
}

static void log_from_site_b(int i)
{
    log_warn("site B line %d", i);
}

static void test_burst_then_suppression(void **state)
{
    for (int i = 0; i < LOG_BURST + 5; i++)
        log_from_site_a(i);
    char *text = slurp(path);
    assert_int_equal(count_lines(text), LOG_BURST);
    assert_string_equal(message_of_line(text, LOG_BURST - 1), "site A line 9");
    free(text);

    /* Another call site has its own bucket. */
    log_from_site_b(0);
    /* Just short of a second: still nothing from site A. */
    fake_now += 999;
    log_from_site_a(100);
    /* A second later one line, carrying the count of what was held back (5 + 1). */
    fake_now += 1;
    log_from_site_a(101);
    log_from_site_a(102);
    text = slurp(path);
    assert_int_equal(count_lines(text), LOG_BURST + 2);
    assert_string_equal(message_of_line(text, LOG_BURST), "site B line 0");
    assert_string_equal(message_of_line(text, LOG_BURST + 1),
                        "site A line 101 (6 similar lines suppressed)");
    free(text);

    /* Three seconds give three lines; the first reports the one dropped before. */
    fake_now += 3000;
    for (int i = 0; i < 5; i++)
        log_from_site_a(200 + i);
    text = slurp(path);
    assert_int_equal(count_lines(text), LOG_BURST + 5);
    assert_string_equal(message_of_line(text, LOG_BURST + 2),
                        "site A line 200 (1 similar line suppressed)");
    assert_string_equal(message_of_line(text, LOG_BURST + 3), "site A line 201");
    assert_string_equal(message_of_line(text, LOG_BURST + 4), "site A line 202");
    free(text);

    /* A long quiet spell refills the burst, no more. */
    fake_now += 3600 * 1000;
    for (int i = 0; i < 2 * LOG_BURST; i++)
        log_from_site_a(300 + i);
    text = slurp(path);
    assert_int_equal(count_lines(text), 2 * LOG_BURST + 5);
    assert_string_equal(message_of_line(text, LOG_BURST + 5),
                        "site A line 300 (2 similar lines suppressed)");
    assert_string_equal(message_of_line(text, 2 * LOG_BURST + 4), "site A line 309");
    free(text);
}

/* A caller that budgets its lines itself (the front's per-address security events) is not cut
 * by the per-site limit, and does not use up the site budget of anyone else. */
static void test_unthrottled(void **state)
{
    for (int i = 0; i < 3 * LOG_BURST; i++)
        log_msg_unthrottled(LL_INFO, "event %d", i);
    log_from_site_a(0);
    char *text = slurp(path);
    assert_int_equal(count_lines(text), 3 * LOG_BURST + 1);
    assert_string_equal(message_of_line(text, 3 * LOG_BURST - 1), "event 29");
    assert_null(strstr(text, "suppressed"));
    free(text);
    /* The level still applies. */
    log_set_level(LL_WARN);
    log_msg_unthrottled(LL_INFO, "not shown");
    text = slurp(path);
    assert_null(strstr(text, "not shown"));
    free(text);
}

static void test_escaping(void **state)
{
    log_notice("user %s said %s", "a\nb", "x\r\ty\x01\x7f\xc3\xa9");
    char *text = slurp(path);
    assert_int_equal(count_lines(text), 1);
    assert_string_equal(message_of_line(text, 0),
                        "user a\\nb said x\\r\\ty\\x01\\x7f\xc3\xa9");
    free(text);
}

static void test_truncation(void **state)
{
    /* 3000 two-byte characters: longer than a line may be. */
    static char big[6001];
    for (int i = 0; i < 3000; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2);
    big[6000] = '\0';
    log_info("%s", big);
    log_info("after %d", 1);
    char *text = slurp(path);
    assert_int_equal(count_lines(text), 2);
    const char *end = strchr(text, '\n');
    size_t len = (size_t)(end - text) + 1;
    assert_true(len <= PIPE_BUF);
    assert_true(len > PIPE_BUF - 8);
    assert_memory_equal(end - 3, "...", 3);
    /* No character was cut: everything before "..." after the prefix is whole "é"s. */
    const char *msg = strstr(text, "info: ") + 6;
    assert_int_equal((end - 3 - msg) % 2, 0);
    for (const char *p = msg; p < end - 3; p += 2)
        assert_memory_equal(p, "\xc3\xa9", 2);
    assert_string_equal(message_of_line(text, 1), "after 1");
    free(text);
}

static void test_errno_kept(void **state)
{
    errno = ENOENT;
    log_error("open failed: %m");
    assert_int_equal(errno, ENOENT);
    log_set_level(LL_ERROR);
    errno = EACCES;
    log_info("dropped");
    assert_int_equal(errno, EACCES);
    char *text = slurp(path);
    assert_string_equal(message_of_line(text, 0), "open failed: No such file or directory");
    free(text);
}

static void test_reopen_after_rename(void **state)
{
    char rotated[PATH_MAX + 8];
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    log_info("before rotation");
    assert_int_equal(rename(path, rotated), 0);
    log_info("still to the old file");
    assert_int_equal(log_reopen(), 0);
    log_info("to the new file");
    char *old = slurp(rotated);
    char *cur = slurp(path);
    assert_int_equal(count_lines(old), 2);
    assert_string_equal(message_of_line(old, 0), "before rotation");
    assert_string_equal(message_of_line(old, 1), "still to the old file");
    assert_int_equal(count_lines(cur), 1);
    assert_string_equal(message_of_line(cur, 0), "to the new file");
    free(old);
    free(cur);
    unlink(rotated);

    /* A file that cannot be opened is an error, and the old target stays. */
    char bad[PATH_MAX + 16];
    snprintf(bad, sizeof(bad), "%s/missing/dir.log", dir);
    assert_int_equal(log_open("x", LOG_TO_FILE, bad, LL_INFO), -1);
    assert_int_equal(errno, ENOENT);
    log_info("after a failed open");
    cur = slurp(path);
    assert_int_equal(count_lines(cur), 2);
    assert_string_equal(message_of_line(cur, 1), "after a failed open");
    assert_non_null(strstr(cur, " jabshard-c2s["));
    free(cur);
}

/* syslog(3) is replaced for this binary so the priority and text can be checked. */
static int syslog_calls, syslog_priority, syslog_option;
static char syslog_text[PIPE_BUF + 1], syslog_ident[64];

void openlog(const char *ident, int option, int facility)
{
    snprintf(syslog_ident, sizeof(syslog_ident), "%s", ident);
    syslog_option = option | facility;
}

void closelog(void)
{
}

static void __attribute__((format(printf, 2, 0)))
record_syslog(int priority, const char *fmt, va_list ap)
{
    syslog_calls++;
    syslog_priority = priority;
    vsnprintf(syslog_text, sizeof(syslog_text), fmt, ap);
}

void syslog(int priority, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_syslog(priority, fmt, ap);
    va_end(ap);
}

/* What syslog becomes under _FORTIFY_SOURCE. */
void __syslog_chk(int priority, int flag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_syslog(priority, fmt, ap);
    va_end(ap);
}

static void test_syslog(void **state)
{
    assert_int_equal(log_open("jabshard-sm", LOG_TO_SYSLOG, NULL, LL_DEBUG), 0);
    assert_string_equal(syslog_ident, "jabshard-sm");
    assert_int_equal(syslog_option & LOG_PID, LOG_PID);
    assert_int_equal(syslog_option & LOG_FACMASK, LOG_DAEMON);
    static const struct { log_level level; int priority; } map[] = {
        { LL_DEBUG, LOG_DEBUG }, { LL_INFO, LOG_INFO }, { LL_NOTICE, LOG_NOTICE },
        { LL_WARN, LOG_WARNING }, { LL_ERROR, LOG_ERR },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        syslog_calls = 0;
        log_msg(map[i].level, "priority %zu\n", i);
        assert_int_equal(syslog_calls, 1);
        assert_int_equal(syslog_priority, map[i].priority);
        char want[32];
        snprintf(want, sizeof(want), "priority %zu\\n", i);  /* no timestamp, escaped */
        assert_string_equal(syslog_text, want);
    }
    /* Rate limiting applies to syslog too. */
    syslog_calls = 0;
    for (int i = 0; i < LOG_BURST + 3; i++)
        log_notice("syslog burst");
    assert_int_equal(syslog_calls, LOG_BURST);
    fake_now += 1000;
    log_notice("syslog burst");
    assert_string_equal(syslog_text, "syslog burst (3 similar lines suppressed)");
}

/* Concurrent writers: every line arrives whole. The clock advances a second per call so the one
 * shared call site is never limited. */
static atomic_ullong ticking_now;
static uint64_t ticking_clock(void)
{
    return atomic_fetch_add(&ticking_now, 1000);
}

#define WRITERS 8
#define LINES_PER_WRITER 200

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char payload[1500];
    memset(payload, 'a' + id, sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    for (int i = 0; i < LINES_PER_WRITER; i++)
        log_info("writer %d line %d %s end", id, i, payload);
    return NULL;
}

static void test_threads_whole_lines(void **state)
{
    log_test_set_clock(ticking_clock);
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    char *text = slurp(path);
    assert_int_equal(count_lines(text), WRITERS * LINES_PER_WRITER);
    int seen[WRITERS] = { 0 };
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int id, n, off = 0;
        char *msg = strstr(line, "] info: writer ");
        assert_non_null(msg);
        assert_int_equal(sscanf(msg, "] info: writer %d line %d %n", &id, &n, &off), 2);
        assert_true(id >= 0 && id < WRITERS && off > 0);
        assert_int_equal(n, seen[id]++);
        const char *p = msg + off;
        for (int k = 0; k < 1499; k++)
            assert_int_equal(p[k], 'a' + id);
        assert_string_equal(p + 1499, " end");
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(seen[i], LINES_PER_WRITER);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_level_names, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_min_level, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_burst_then_suppression, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_unthrottled, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_escaping, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_truncation, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_errno_kept, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_reopen_after_rename, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_syslog, fresh_log, back_to_stderr),
        cmocka_unit_test_setup_teardown(test_threads_whole_lines, fresh_log, back_to_stderr),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
