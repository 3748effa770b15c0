/* sm/modules.c — the list of built-in modules, in registration order (disco lists features in
 * this order, and hooks of one event run in it: mod_blocking comes before the modules whose
 * hooks it must stop). */
#include "sm/modules.h"

void sm_modules_register(sm *s)
{
    mod_disco_register(s);
    mod_blocking_register(s);
    mod_presence_register(s);
    mod_roster_register(s);
    mod_message_register(s);
    mod_ping_register(s);
    mod_register_register(s);
    mod_version_register(s);
    mod_time_register(s);
    mod_vcard_register(s);
    mod_private_register(s);
    mod_last_register(s);
    mod_carbons_register(s);
}
