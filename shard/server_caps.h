/* shard/server_caps.h — the server's own entity capabilities (XEP-0115 §6.3) per served host, as
 * the SM announces them (smproto/caps_msg.h) each time the link comes up: the front puts them in
 * its stream features (<c/>), the SM answers the disco#info query for node#ver.
 *
 * Thread rules: the link thread updates; IO threads read, without locks (the table in use is
 * replaced whole, atomically, and old tables are kept until the object is freed: the SM announces
 * a new one only when its configuration changed, so they are few).
 */
#ifndef JABSHARD_SHARD_SERVER_CAPS_H
#define JABSHARD_SHARD_SERVER_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smproto/caps_msg.h"

#define SERVER_CAPS_VER_MAX 64

typedef struct server_caps server_caps;

server_caps *server_caps_new(void);
void server_caps_free(server_caps *c);

/* The SM's announcement: host and ver pairs, each a NUL-terminated string (a host of at most
 * 1023 bytes, a ver of at most SERVER_CAPS_VER_MAX - 1 of base64), at most 1024 hosts. false
 * (nothing changed) when it is not one. */
bool server_caps_update(server_caps *c, const uint8_t *body, size_t len);

/* host's ver into out (size bytes); false when the SM announced none for it. */
bool server_caps_ver(const server_caps *c, const char *host, char *out, size_t size);

#endif
