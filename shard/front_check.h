/* shard/front_check.h — `jabshard-c2s --check`: what would stop the front or its clients, found
 * before it starts (core/check.h prints the list). */
#ifndef JABSHARD_SHARD_FRONT_CHECK_H
#define JABSHARD_SHARD_FRONT_CHECK_H

#include "shard/front_config.h"

/* Checks cfg, loaded from path: the certificate, the ports, the SM link, the open-file limit,
 * the secret. Returns the exit status (0: no errors). */
int front_check(const front_config *cfg, const char *path);

#endif
