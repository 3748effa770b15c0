/* sm/sm_check.h — `jabshard-sm --check`: what would stop the SM, found before it starts
 * (core/check.h prints the list). */
#ifndef JABSHARD_SM_SM_CHECK_H
#define JABSHARD_SM_SM_CHECK_H

#include "sm/config.h"

/* Checks cfg, loaded from path: storage, the links' ports, the secrets, the admin socket.
 * Returns the exit status (0: no errors). */
int sm_check(const sm_config *cfg, const char *path);

#endif
