/* sm/disco.h — what mod_disco (XEP-0030) offers the modules that add to an entity's info through
 * its events ("disco-info" for the server, "disco-account-info" for an account). */
#ifndef JABSHARD_SM_DISCO_H
#define JABSHARD_SM_DISCO_H

#include "core/xml.h"

/* <feature var=var/> in the <query/> q being answered. */
void disco_feature(xml_arena *a, xml_node *q, const char *var);

#endif
