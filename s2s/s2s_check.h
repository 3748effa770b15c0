/* s2s/s2s_check.h — `jabshard-s2s --check`: what would stop the federation front, or keep other
 * servers from reaching or trusting it, found before it starts (core/check.h prints the list, as
 * for the client front and the SM).
 *
 * Thread rules: none (it runs alone, before the program would start).
 */
#ifndef JABSHARD_S2S_S2S_CHECK_H
#define JABSHARD_S2S_S2S_CHECK_H

#include "s2s/s2s_config.h"

/* Checks cfg, loaded from path: the certificate, the listening ports, the SM link (its service
 * id and secret), the dialback secret, DNS. Returns the exit status (0: no errors). */
int s2s_check(const s2s_config *cfg, const char *path);

#endif
