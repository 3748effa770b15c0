/* sm/admin.h — the session manager's admin channel: a Unix socket (mode 0600, path from sm.xml's
 * <admin><socket>) that jabshardctl talks to. A client sends one request line and reads reply
 * lines until the SM closes the connection; the last line is the outcome:
 *
 *   sessions        one line per session: full JID, link (service id), session id, bound since
 *                   (RFC 3339), "available" or "bound", tab-separated, sorted by JID
 *   kick JID        ends that session (full JID) or every session of the account (bare JID): the
 *                   client gets <policy-violation/> "kicked by an administrator"
 *
 *   ok              done
 *   refused: WHY    understood but not done (no such session, not a local account)
 *   error: WHY      not understood
 *
 * The listener and its connections are serviced by the routing thread's event loop without ever
 * blocking it; everything here runs on that thread. */
#ifndef JABSHARD_SM_ADMIN_H
#define JABSHARD_SM_ADMIN_H

#include <stddef.h>

#include "core/buf.h"
#include "core/evloop.h"
#include "sm/sm.h"

typedef enum { SM_ADMIN_OK, SM_ADMIN_REFUSED, SM_ADMIN_ERROR } sm_admin_status;

/* Runs one request line (without its newline) against the core and appends the whole reply,
 * outcome line included, to out. */
sm_admin_status sm_admin_execute(sm *s, const char *line, size_t len, buf *out);

typedef struct sm_admin sm_admin;

/* Listens on path. A socket file left by an SM that is gone is replaced; one an SM still answers
 * on is an error. NULL with the reason in err on failure. */
sm_admin *sm_admin_open(evloop *loop, sm *s, const char *path, char *err, size_t errlen);
/* Closes the listener and any connection, and removes the socket file. */
void sm_admin_close(sm_admin *a);

#endif
