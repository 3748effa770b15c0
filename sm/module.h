/* sm/module.h — what a feature module is to the session manager: a descriptor the core loads and
 * never looks inside (as nginx's ngx_module_t; the handlers are named as Prosody's
 * module:hook("iq-get/host/urn:xmpp:ping:ping") names them).
 *
 * A module is one file, sm/mod_NAME.c, that defines one `const sm_module mod_NAME` and adds it to
 * the table of built-in modules (sm/modules.c). It declares:
 * - the configuration it reads (paths in sm.xml, so the loader knows its vocabulary; the values
 *   are read by its init, with core/config.h, into its own data);
 * - the stanzas and events it handles (`handlers`);
 * - its disco features;
 * - the state it keeps per session and per user: the core allocates that many zeroed bytes with
 *   every session and user, frees them (after `release` ran on them) with it, and gives the
 *   module a pointer; nothing else reads them;
 * - what of a session's state must survive an SM restart: it is packed into the session's STATE
 *   record, which the front keeps without reading it and gives back in a RESYNC
 *   (docs/smproto.md), and unpacked by `restore`.
 *
 * Loading: the server loads the modules named in sm.xml's <modules> (all built-in ones when the
 * element is absent) in the order of the built-in table (hooks of one event run in that order),
 * calling each one's init after the core is ready. Unit tests load any subset.
 *
 * Thread rules: everything runs on the routing thread.
 */
#ifndef JABSHARD_SM_MODULE_H
#define JABSHARD_SM_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "sm/sm.h"

/* A stanza or event a module handles. `event` names it:
 *   "iq-get/host/NS:NAME"  an iq get addressed to a served host whose payload is NS's NAME
 *   "iq-set/bare/NS:NAME"  the same for sets to an account's bare JID (or no 'to')
 *   "iq/any/NS:NAME"       gets and sets, to a host or an account; "NS:*" any element of NS
 *   an event of sm.h by its name: "presence-out", "presence-in", "message-offline",
 *   "session-available", "session-end", "register", "user-load", "outbound", "inbound",
 *   "message-delivered", "roster-changed", "session-lost", "session-sent", "undelivered",
 *   "tick", "session-attached", "front-up", "start-done", "metrics"
 *   an event a loaded module fires (declared in its `events`), as mod_disco's "disco-info"
 * iq handlers take `iq`, events take `hook`. A name that is neither is refused at load (a
 * programming error, or a module loaded without the one it extends). */
typedef struct sm_handler {
    const char *event;
    sm_iq_fn iq;
    sm_hook_fn hook;
} sm_handler;

/* An integer option: where it is in sm.xml (from the root), its default and its range. The core
 * reads it when it loads the module (a bad value is a configuration error naming file, line and
 * element); the module asks for it with sm_module_int. */
typedef struct sm_int_option {
    const char *path;
    long long def, min, max;
} sm_int_option;

typedef struct sm_module sm_module;
struct sm_module {
    const char *name;                  /* as <modules> lists it: "roster" for mod_roster */
    /* Integer options, ended by an entry whose path is NULL, or NULL. */
    const sm_int_option *int_options;
    /* Other element paths this module reads itself in init, relative to sm.xml's root
     * ("host/register"); NULL-terminated, or NULL. (The loader adds both kinds to the file's
     * vocabulary.) */
    const char *const *options;
    /* Reads the module's options (errors through config_fail name file, line and element) and
     * sets up its data (sm_module_set_data). Returns false when the module cannot run. NULL: no
     * setup. */
    bool (*init)(sm *s, const sm_module *self, config *cfg);
    /* Frees what init set up; the core has freed every session and user by then. */
    void (*fini)(sm *s, const sm_module *self);
    const sm_handler *handlers;        /* ended by an entry whose event is NULL */
    const char *const *features;       /* disco features, NULL-terminated, or NULL */
    /* Events this module fires for others to hook (sm_fire_named), NULL-terminated, or NULL. */
    const char *const *events;
    /* Per-session and per-user state: sizes, and what to free inside it (NULL: nothing). */
    size_t session_state, user_state;
    void (*session_release)(void *state);
    void (*user_release)(void *state);
    /* What of a session's state survives an SM restart: pack appends at most
     * SM_MODULE_STATE_MAX bytes to out (nothing when there is nothing to keep); restore reads
     * them back for a session a front re-announced. Either both or neither. */
    void (*pack)(const sm_session *sess, const void *state, buf *out);
    void (*restore)(sm_session *sess, void *state, const uint8_t *data, size_t len);
    /* A message from the front's feature of the same name about connection (l, sid) (a MODULE
     * frame: docs/smproto.md §2); the bytes are the peer's, to be decoded strictly. NULL: the
     * module has no front feature. */
    void (*message)(sm *s, const sm_module *self, sm_link *l, uint64_t sid, const uint8_t *body,
                    size_t len);
};

/* Sends a message to the front's feature of m's name, about connection (l, sid). false when it
 * would not fit in a frame (nothing sent). */
bool sm_module_send(sm *s, const sm_module *m, sm_link *l, uint64_t sid, const void *body,
                    size_t len);

#define SM_MODULE_STATE_MAX 255

/* For a module whose resync state is one flag: one byte when it is set, nothing when not. */
void sm_pack_flag(buf *out, bool flag);
bool sm_unpack_flag(const uint8_t *data, size_t len);

/* Runs the hooks of an event a module declared in its `events`, in load order; true when one
 * stopped it. */
bool sm_fire_named(sm *s, const char *event, sm_event *ev);

/* The value of one of m's int_options (its path as declared). */
long long sm_module_int(const sm *s, const sm_module *m, const char *path);

/* The module's per-session and per-user state (size as declared, zeroed when created). The
 * module must be loaded and declare the state. */
void *sm_session_state(const sm *s, const sm_session *sess, const sm_module *m);
void *sm_user_state(const sm *s, const sm_user *u, const sm_module *m);
/* The module's own data (what its init set), or NULL. */
void *sm_module_data(const sm *s, const sm_module *m);
void sm_module_set_data(sm *s, const sm_module *m, void *data);
/* Whether m is loaded (a module that depends on another's state asks). */
bool sm_module_loaded(const sm *s, const sm_module *m);

#endif
