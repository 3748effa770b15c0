/* shard/front_log.c — the front's event lines and their per-address budget (see front_log.h). */
#include "shard/front_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

/* Longest user name logged, in bytes: enough for any real one, and a line stays a line. */
#define FRONT_LOG_USER_MAX 64

typedef struct peer_text {
    char addr[INET6_ADDRSTRLEN];
    unsigned port;
} peer_text;

static peer_text peer_of(const struct sockaddr_storage *ss)
{
    peer_text p = {"?", 0};
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, p.addr, sizeof p.addr);
        p.port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, p.addr, sizeof p.addr);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, p.addr, sizeof p.addr);
        p.port = ntohs(a->sin6_port);
    }
    return p;
}

/* One a second after the burst: the budget's shape. */
static const ip_rate line_budget = {.period_us = 1000000, .burst = FRONT_LOG_BURST};

static bool within_budget(ip_limit *budget, const struct sockaddr_storage *addr, uint64_t now_ms)
{
    return !budget || ip_limit_take(budget, addr, now_ms, &line_budget);
}

/* user, quoted: '"' and '\' escaped, cut at FRONT_LOG_USER_MAX bytes (never inside a UTF-8
 * character) with "..." after the closing quote. */
static void quote_user(const char *user, char *out, size_t cap)
{
    size_t n = 0, taken = 0;
    out[n++] = '"';
    for (; user[taken] && taken < FRONT_LOG_USER_MAX && n + 3 < cap; taken++) {
        char ch = user[taken];
        if (ch == '"' || ch == '\\')
            out[n++] = '\\';
        out[n++] = ch;
    }
    bool cut = user[taken] != '\0';
    if (cut)   /* drop a partial UTF-8 sequence at the cut */
        while (n > 1 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
            n--;
    if (cut && n > 1 && (unsigned char)out[n - 1] >= 0xC0)
        n--;
    out[n++] = '"';
    out[n] = '\0';
    if (cut)
        snprintf(out + n, cap - n, "...");
}

void front_log_auth_failed(ip_limit *budget, const struct sockaddr_storage *addr, uint64_t now_ms,
                           const char *mech, const char *reason, const char *user)
{
    if (!log_enabled(LL_INFO) || !within_budget(budget, addr, now_ms))
        return;
    peer_text p = peer_of(addr);
    char quoted[2 * FRONT_LOG_USER_MAX + 8];
    quote_user(user ? user : "", quoted, sizeof quoted);
    log_msg_unthrottled(LL_INFO, "c2s auth-failed addr=%s port=%u mech=%s reason=%s user=%s",
                        p.addr, p.port, mech ? mech : "-", reason, quoted);
}

void front_log_refused(ip_limit *budget, const struct sockaddr_storage *addr, uint64_t now_ms,
                       const char *what, const char *limit)
{
    if (!log_enabled(LL_INFO) || !within_budget(budget, addr, now_ms))
        return;
    peer_text p = peer_of(addr);
    log_msg_unthrottled(LL_INFO, "c2s %s-refused addr=%s port=%u limit=%s", what, p.addr, p.port,
                        limit);
}

void front_log_output_cut(const struct sockaddr_storage *addr, const char *reason, size_t queued)
{
    peer_text p = peer_of(addr);
    log_info("c2s output-cut addr=%s port=%u reason=%s queued=%zu", p.addr, p.port, reason, queued);
}

void front_log_bps_paused(const struct sockaddr_storage *addr)
{
    peer_text p = peer_of(addr);
    log_info("c2s bps-paused addr=%s port=%u limit=max_bps", p.addr, p.port);
}
