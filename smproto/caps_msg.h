/* smproto/caps_msg.h — the server's entity capabilities (XEP-0115 §6.3) as the SM announces them
 * to a front when its link comes up: a MODULE frame named "caps" for connection 0, whose body is,
 * for each served host, the host and the ver of its disco#info, each a NUL-terminated string
 * (shard/server_caps.c reads it, sm/mod_caps.c writes it). Both ends name the server's caps node
 * the same. */
#ifndef JABSHARD_SMPROTO_CAPS_MSG_H
#define JABSHARD_SMPROTO_CAPS_MSG_H

#define CAPS_MSG_MODULE "caps"
#define CAPS_SERVER_NODE "https://jabshard.org/caps"

#endif
