/* core/args.c — the daemons' command line (see args.h). */
#include "core/args.h"

#include <getopt.h>
#include <stdio.h>

int args_parse(int argc, char **argv, const char *usage, const char **path, bool *check)
{
    static const struct option longopts[] = {{"check", no_argument, NULL, 'k'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (opt == 'c') {
            *path = optarg;
        } else if (opt == 'k') {
            *check = true;
        } else {
            fputs(usage, stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    return -1;
}
