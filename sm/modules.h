/* sm/modules.h — the built-in feature modules (sm/mod_*.c), each a descriptor (sm/module.h), and
 * the table the server loads them from. The core never includes this: the server (sm/server.c) and
 * the admin tool hand the table to sm_new and sm_config_load. */
#ifndef JABSHARD_SM_MODULES_H
#define JABSHARD_SM_MODULES_H

#include "sm/module.h"

extern const sm_module mod_disco, mod_blocking, mod_presence, mod_roster, mod_message, mod_ping,
    mod_register, mod_version, mod_time, mod_vcard, mod_private, mod_last, mod_carbons,
    mod_contact, mod_smacks, mod_caps, mod_pep, mod_bookmarks, mod_avatar_vcard, mod_mam,
    mod_muc, mod_muc_mam, mod_upload, mod_adhoc, mod_admin_commands, mod_push;

/* Every built-in module, NULL-terminated, in load order: disco lists features in this order, and
 * the hooks of one event run in it (mod_blocking comes before the modules whose hooks it must
 * stop; mod_smacks before mod_presence, so that what a resumable session kept is stored offline
 * before its logout is broadcast; mod_caps and mod_avatar_vcard before mod_presence, whose
 * presence hook may stop the event, so that every presence a session broadcasts updates its caps
 * and carries its avatar's hash; mod_presence before
 * mod_last, which records the logouts it broadcasts). */
extern const sm_module *const sm_builtin_modules[];

#endif
