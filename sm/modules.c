/* sm/modules.c — the table of built-in modules (see modules.h). A new module is a new file
 * sm/mod_NAME.c and a line here. */
#include "sm/modules.h"

#include <stddef.h>

const sm_module *const sm_builtin_modules[] = {
    &mod_disco,   &mod_blocking,  &mod_smacks,     &mod_caps,     &mod_avatar_vcard,
    &mod_presence, &mod_roster,   &mod_message,    &mod_ping,     &mod_register,
    &mod_version, &mod_time,      &mod_vcard,      &mod_private,  &mod_last,
    &mod_carbons, &mod_contact,   &mod_pep,        &mod_bookmarks, &mod_mam,
    &mod_muc,      &mod_muc_mam,  &mod_upload,    &mod_adhoc,    &mod_admin_commands,
    &mod_push,
    NULL,
};
