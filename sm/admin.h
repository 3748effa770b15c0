/* sm/admin.h — the session manager's admin channel: a Unix socket (mode 0600, path from sm.xml's
 * <admin><socket>) that jabshardctl talks to. A client sends one request line and reads reply
 * lines until the SM closes the connection; the last line is the outcome:
 *
 *   sessions        one line per session: full JID, link (service id), session id, bound since
 *                   (RFC 3339), "available" or "bound", tab-separated, sorted by JID
 *   kick JID        ends that session (full JID) or every session of the account (bare JID): the
 *                   client gets <policy-violation/> "kicked by an administrator"
 *   status          the SM's state, one tab-separated record a line:
 *                     started TIME (RFC 3339) / uptime SECONDS / sessions N / users N (in memory)
 *                     starting yes|no (the start's wait for the fronts' resyncs is on)
 *                     service ID front|component up|down (each configured <service>)
 *                     storage DRIVER up|down|unknown WORKERS PENDING OUTAGES
 *   stats           the core's counters (sm_get_stats), "NAME VALUE" a line: sessions,
 *                   sessions_available, sessions_detached, users, links, fronts_up, components_up,
 *                   stanzas_in_message, _presence, _iq, _other, bytes_in, stanzas_out, bytes_out,
 *                   dropped_stale, dropped_bad, dropped_too_big, storage_pending (requests
 *                   submitted and not answered), uptime
 *   announce TEXT   a headline message with TEXT as its body, from each host, to every session
 *                   (sm/announce.h): "announced to N session(s)"; refused when TEXT has control
 *                   characters or is not UTF-8
 *
 *   ok              done
 *   refused: WHY    understood but not done (no such session, not a local account)
 *   error: WHY      not understood
 *
 * The listener and its connections are serviced by the routing thread's event loop without ever
 * blocking it; everything here runs on that thread. */
#ifndef JABSHARD_SM_ADMIN_H
#define JABSHARD_SM_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/evloop.h"
#include "sm/sm.h"

typedef enum { SM_ADMIN_OK, SM_ADMIN_REFUSED, SM_ADMIN_ERROR } sm_admin_status;

/* What the program knows of storage, for status and stats. */
typedef struct sm_admin_storage {
    const char *driver;
    int workers;
    size_t pending;         /* requests submitted and not answered yet */
    bool down;              /* the database is unreachable (its circuit breaker is open) */
    uint64_t outages;       /* times it became unreachable */
} sm_admin_storage;
typedef void (*sm_admin_storage_fn)(void *ctx, sm_admin_storage *out);

/* Runs one request line (without its newline) against the core and appends the whole reply,
 * outcome line included, to out. storage: what status and stats say of it (NULL: unknown). */
sm_admin_status sm_admin_execute(sm *s, const sm_admin_storage *storage, const char *line,
                                 size_t len, buf *out);

typedef struct sm_admin sm_admin;

/* Listens on path. A socket file left by an SM that is gone is replaced; one an SM still answers
 * on is an error. NULL with the reason in err on failure. */
sm_admin *sm_admin_open(evloop *loop, sm *s, const char *path, char *err, size_t errlen);
/* Where status and stats ask about storage (called on each such request). */
void sm_admin_set_storage(sm_admin *a, sm_admin_storage_fn fn, void *ctx);
/* Closes the listener and any connection, and removes the socket file. */
void sm_admin_close(sm_admin *a);

#endif
