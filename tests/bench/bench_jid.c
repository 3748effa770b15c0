/* tests/bench/bench_jid.c — jid_parse throughput: ASCII full JIDs (the fast path, what nearly all
 * traffic looks like) and non-ASCII ones (through libidn's stringprep). Prints parses per second;
 * asserts nothing about speed. */
#include "core/jid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const bench_ascii[] = {
    "juliet@example.com/balcony",
    "Romeo@Montague.example/Orchard-7f3a",
    "user.name+tag@jabber.example.org/Conversations.Xy7zAbCd",
    "conference.example.com/room@nick",
};
static const char *const bench_unicode[] = {
    "ΣΑΣ@παράδειγμα.example/Ω",
    "fußball@bücher.example/♚",
    "ｊｕｌｉｅｔ@ＥＸＡＭＰＬＥ．ｃｏｍ/ｒ",
    "例え@例え。テスト/\U0001f600 phone",
};

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_run(const char *name, const char *const *inputs, size_t n, long rounds)
{
    size_t *lens = malloc(n * sizeof *lens);
    if (!lens)
        abort();
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(inputs[i]);
    size_t checksum = 0;
    double start = bench_now();
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < n; i++) {
            jid j;
            if (jid_parse(inputs[i], lens[i], &j) != JID_OK) {
                fprintf(stderr, "bench_jid: '%s' does not parse\n", inputs[i]);
                exit(1);
            }
            checksum += jid_full_len(&j);
            jid_free(&j);
        }
    double secs = bench_now() - start;
    free(lens);
    double parses = (double)rounds * (double)n;
    printf("jid_parse %-8s %12.0f parses/s (%.0f ns each, checksum %zu)\n", name, parses / secs,
           secs / parses * 1e9, checksum);
}

int main(void)
{
    bench_run("ascii", bench_ascii, sizeof bench_ascii / sizeof bench_ascii[0], 1000000);
    bench_run("unicode", bench_unicode, sizeof bench_unicode / sizeof bench_unicode[0], 50000);
    return 0;
}
