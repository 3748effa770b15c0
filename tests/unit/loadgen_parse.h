/* tests/unit/loadgen_parse.h — the load generator's command line in its unit tests
 * (test_loadgen_options.c, test_loadgen_fed.c): an argument list parsed, with or without the
 * usage a refusal prints to stderr. Include it after tests/bench/loadgen/lg_options.c. */
#ifndef JABSHARD_TESTS_UNIT_LOADGEN_PARSE_H
#define JABSHARD_TESTS_UNIT_LOADGEN_PARSE_H

/* Parses a NULL-terminated argument list (program name first). */
static int parse(lg_options *o, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    return lg_options_parse(argc, argv, o);
}

/* parse, with stderr (where each refusal prints the usage) sent to /dev/null meanwhile. */
static int parse_quietly(lg_options *o, const char *const *args)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
    assert_true(saved >= 0 && null >= 0);
    dup2(null, STDERR_FILENO);
    close(null);
    int rc = parse(o, args);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return rc;
}

#endif
