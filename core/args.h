/* core/args.h — the daemons' command line: -c FILE (the configuration), --check, -h.
 *
 * Thread rules: main's, before anything else.
 */
#ifndef JABSHARD_CORE_ARGS_H
#define JABSHARD_CORE_ARGS_H
#include <stdbool.h>

/* Reads argv into *path (left as it is without -c) and *check. Returns -1 to go on, or the
 * status to exit with after usage was printed to stderr: 0 for -h, 2 for anything wrong. */
int args_parse(int argc, char **argv, const char *usage, const char **path, bool *check);

#endif
