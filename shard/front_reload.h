/* shard/front_reload.h — what SIGHUP does to a running front: the configuration file is read
 * again; the limits, the log level and the certificate (renewed in place) take effect for what
 * comes next, and every other change is named in the log as needing a restart.
 *
 * Thread rules: the main thread (the IO threads take the new limits themselves, iothread.h).
 */
#ifndef JABSHARD_SHARD_FRONT_RELOAD_H
#define JABSHARD_SHARD_FRONT_RELOAD_H

#include <stdatomic.h>

#include "core/tls.h"
#include "shard/front_config.h"

typedef struct front_reload front_reload;

/* cfg: the configuration in force (the program's, loaded from path); limits: the slot the IO
 * threads read (iothread_shared.limits). */
front_reload *front_reload_new(const char *path, const front_config *cfg, tls_server *tls,
                               _Atomic(const front_limits *) *limits);
/* SIGHUP: reads path again and applies what can be. */
void front_reload_run(front_reload *r);
/* After the IO threads are joined: frees the configurations the reloads read. */
void front_reload_free(front_reload *r);

#endif
