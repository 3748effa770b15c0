/* shard/front_log.h — the front's lines for operators and for fail2ban: one line per event, at
 * level info, in a format that stays stable (docs/security.md documents it, and
 * etc/fail2ban/filter.d/jabshard.conf reads it):
 *
 *   c2s auth-failed addr=ADDR port=PORT mech=MECH reason=REASON user="USER"
 *   c2s conn-refused addr=ADDR port=PORT limit=LIMIT
 *   c2s register-refused addr=ADDR port=PORT limit=LIMIT
 *   c2s output-cut addr=ADDR port=PORT reason=REASON queued=BYTES
 *   c2s bps-paused addr=ADDR port=PORT limit=max_bps
 *
 * ADDR is the client's IP address (an IPv4-mapped IPv6 address written as IPv4, which is what a
 * firewall bans). It comes right after the event's name, before anything the client chooses: the
 * user name, the one such field, comes last, quoted with '"' and '\' escaped (core/log escapes
 * control characters), so no name can forge an address fail2ban would read.
 *
 * Budgets: the events a client can cause at will (auth-failed, conn-refused, register-refused)
 * are limited per client address, FRONT_LOG_BURST lines at once and then one a second, in the
 * table the caller passes, and bypass core/log's per-call-site limit: a flood from one address
 * cannot hide another address's lines, and no address can fill the disk. output-cut and bps-paused
 * happen at most once per connection and keep core/log's per-site limit.
 *
 * Thread rules: any thread.
 */
#ifndef JABSHARD_SHARD_FRONT_LOG_H
#define JABSHARD_SHARD_FRONT_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shard/ip_limit.h"

#define FRONT_LOG_BURST 20

/* budget: the per-address line budget (NULL: none). mech, user: NULL when unknown. */
void front_log_auth_failed(ip_limit *budget, const struct sockaddr_storage *addr, uint64_t now_ms,
                           const char *mech, const char *reason, const char *user);
/* what: "conn" or "register"; limit: the configuration element that refused. */
void front_log_refused(ip_limit *budget, const struct sockaddr_storage *addr, uint64_t now_ms,
                       const char *what, const char *limit);
void front_log_output_cut(const struct sockaddr_storage *addr, const char *reason, size_t queued);
void front_log_bps_paused(const struct sockaddr_storage *addr);

#endif
