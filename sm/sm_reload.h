/* sm/sm_reload.h — what SIGHUP does to a running SM: sm.xml is read again; the core's limits,
 * every module's integer options (its limits and defaults) and the log level take effect at once,
 * and every other change is named in the log as needing a restart.
 *
 * Thread rules: the SM's loop thread (signals arrive on it).
 */
#ifndef JABSHARD_SM_SM_RELOAD_H
#define JABSHARD_SM_SM_RELOAD_H

#include "sm/config.h"
#include "sm/sm.h"

/* cfg: the configuration in force (the program's, loaded from path, what the core reads). */
void sm_reload(sm *s, sm_config *cfg, const char *path);

#endif
