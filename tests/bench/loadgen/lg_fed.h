/* tests/bench/loadgen/lg_fed.h — federation mode (--peer-server, --peer-domain): the users are
 * split between two servers of two domains, and every message crosses from one to the other over
 * their server-to-server connection (make bench-peers' scenario_s2s.py).
 *
 * With --users N (even) in this mode, user indexes 0..N/2-1 (user numbers first..first+N/2-1) are
 * the senders: they log into --server (or --host/--port) as users of --domain. Indexes N/2..N-1
 * are the receivers: they log into --peer-server as users of --peer-domain (the stream's to=, the
 * TLS server name). Sending turn k belongs to sender k mod N/2, which sends to receiver
 * N/2 + (sender + 1) mod N/2, at the peer's domain. Without --peer-domain every function here
 * answers what the generator always did: N senders, user i sends to user i + 1 mod N, one domain,
 * address slot index + hop.
 *
 * Thread rules: none; pure functions of the options. */
#ifndef JABSHARD_LOADGEN_LG_FED_H
#define JABSHARD_LOADGEN_LG_FED_H

#include <stdbool.h>
#include <stdint.h>

#include "tests/bench/loadgen/lg_options.h"

static inline bool lg_fed_on(const lg_options *o) { return o->peer_domain != NULL; }

/* How many users send: the first half in federation mode, all of them otherwise. */
uint32_t lg_fed_senders(const lg_options *o);
/* Whether user index is one of the peer's (a receiver in federation mode). */
bool lg_fed_on_peer(const lg_options *o, uint32_t index);
/* The XMPP domain user index belongs to: --peer-domain for the peer's users, else --domain. */
const char *lg_fed_domain(const lg_options *o, uint32_t index);
/* The address slot (lg_net_connect) of user index after hop moves: the peer's address for the
 * peer's users, the other addresses round-robin for the rest. */
uint32_t lg_fed_slot(const lg_options *o, uint32_t index, uint32_t hop);
/* The user index sender sends its messages to. */
uint32_t lg_fed_receiver(const lg_options *o, uint32_t sender);

#endif
