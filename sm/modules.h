/* sm/modules.h — the built-in feature modules. Each mod_*.c registers its iq handlers, hooks and
 * disco features with the core (sm/sm.h) from its register function; sm_new calls them all. */
#ifndef JABSHARD_SM_MODULES_H
#define JABSHARD_SM_MODULES_H

#include "sm/sm.h"

void sm_modules_register(sm *s);

void mod_presence_register(sm *s);
void mod_roster_register(sm *s);
void mod_message_register(sm *s);
void mod_disco_register(sm *s);
void mod_ping_register(sm *s);
void mod_register_register(sm *s);
void mod_version_register(sm *s);
void mod_time_register(sm *s);
void mod_vcard_register(sm *s);
void mod_private_register(sm *s);
void mod_last_register(sm *s);
void mod_blocking_register(sm *s);
void mod_carbons_register(sm *s);

#endif
