/* sm/admin_commands.h — what the files of mod_admin_commands (XEP-0133 service administration
 * over ad-hoc commands, sm/adhoc.h) share: who is an administrator, account fields checked
 * against it, and the commands each file registers. mod_admin_commands.c owns the
 * configuration and the account commands; admin_stats.c the statistics and online users;
 * admin_motd.c the announcement and the message of the day (its storage, and sending it at
 * login). */
#ifndef JABSHARD_SM_ADMIN_COMMANDS_H
#define JABSHARD_SM_ADMIN_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "sm/adhoc.h"
#include "sm/sm.h"

#define ADMIN_NS "http://jabber.org/protocol/admin"

typedef struct admin_list {
    char **jids;                /* bare JIDs, normalized */
    size_t n;
} admin_list;

/* The module's data (sm_module_data of mod_admin_commands). */
typedef struct admin_data {
    admin_list root;
    admin_list *hosts;          /* per configured host, sm_config's order */
    int nhosts;
    char **motd;                /* per configured host: its message of the day, or NULL */
} admin_data;

/* The index of host in sm_config's hosts, or -1. */
int admin_host_index(const sm *s, const char *host);

/* Whether requester's account administers host (sm.xml's <admins>: the root's administer every
 * host, a <host>'s that host). The adhoc_command allowed function of every command. */
bool admin_allowed(sm *s, const jid *requester, const char *host);

/* A field naming an account the requester may administer (user@host, a served host); false
 * after answering the call with <bad-request/> saying why (c is freed). */
bool admin_account(sm *s, adhoc_call *c, const char *var, const char *value, jid *out);

/* The first stage's form of a command about one account: its accountjid field (the caller adds
 * others). */
xml_node *admin_account_form(adhoc_call *c, const char *title, const char *instructions,
                             const char *label);

/* A command of XEP-0133's (id: "add-user"), for administrators only. */
#define ADMIN_COMMAND(id, title, fn) {ADMIN_NS "#" id, title, admin_allowed, fn, ADMIN_NS}
/* Registers n commands with mod_adhoc. */
void admin_register(sm *s, const adhoc_command *cmds, size_t n);

/* admin_stats.c: registers user-stats, get-online-users-num, get-online-users-list. */
void admin_stats_register(sm *s);

/* admin_motd.c: registers announce, set-motd, edit-motd and delete-motd; reads each host's
 * message of the day from storage. */
bool admin_motd_init(sm *s);
void admin_motd_fini(sm *s);
/* session-available: the message of the day, once a session. */
bool admin_motd_available(sm *s, sm_event *ev);
void admin_motd_pack(const sm_session *sess, const void *state, buf *out);
void admin_motd_restore(sm_session *sess, void *state, const uint8_t *data, size_t len);

#endif
