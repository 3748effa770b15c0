/* tests/bench/loadgen/lg_options.c — command-line parsing and checking for the load generator.
 *
 * Everything an option can get wrong is caught here, so the run itself never meets a bad value:
 * user and password formats must hold exactly one %u, and what ends up in a JID (the user format
 * and the domain) must not hold characters that RFC 7622 forbids there or that would need XML
 * escaping, because the generator writes them into stanzas verbatim. */
#include "tests/bench/loadgen/lg_options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

static const char usage_text[] =
    "usage: loadgen --users N [options]\n"
    "  --host ADDR                 server address or name (127.0.0.1)\n"
    "  --port P[,P...]             ports; users are spread round-robin over them (5222)\n"
    "  --server H:P[,H:P...]       server addresses instead of --host and --port (round-robin)\n"
    "  --domain D                  XMPP domain (localhost)\n"
    "  --users N                   number of users (required)\n"
    "  --first K                   users are user<K>..user<K+N-1> (1)\n"
    "  --user-format F             user name, one %u for the number (user%u)\n"
    "  --password-format F         password, one %u for the number (pass%u)\n"
    "  --mech PLAIN|SCRAM-SHA-1    SASL mechanism (SCRAM-SHA-1)\n"
    "  --tls none|starttls|direct  transport security, no certificate check (starttls;\n"
    "                              websocket: none for ws://, direct for wss://; default none)\n"
    "  --transport tcp|websocket   XMPP over TCP, or over WebSocket (RFC 7395) (tcp)\n"
    "  --ws-path PATH              with websocket: the HTTP path (/xmpp-websocket)\n"
    "  --sources A-B[,A-B...]      IPv4 source addresses to bind, round-robin (none)\n"
    "  --login-concurrency N       logins in flight at once (200)\n"
    "  --warmup                    SCRAM: log every user in and out once first, unmeasured\n"
    "  --hold S                    idle seconds after login (0)\n"
    "  --keepalive S               whitespace keepalive period per connection, 0 off (60)\n"
    "  --rates R[,R...]            messages per second, one round each (no rounds)\n"
    "  --round-seconds S           length of each round (10)\n"
    "  --stop-p99-ms MS            stop stepping after a round whose p99 exceeds MS (off)\n"
    "  --drain-seconds S           wait for stragglers after each round (5)\n"
    "  --reconnect S               re-open a connection S seconds after the server closed it (off)\n"
    "  --ready-file PATH           created once the login phase is over\n"
    "  --timeout S                 login timeout per connection (30)\n"
    "  --sm                        XEP-0198: enable with resumption, ack, resume after a drop\n"
    "  --sm-ack-every N            with --sm: request an ack after every N messages, 0 never (1)\n"
    "  --cut-after S               test hook: cut connections abruptly S s after the logins (off)\n"
    "  --cut-users K               the users cut: user indexes 0..K-1 (all)\n"
    "  --cut-return MS|never       reconnect (and resume) a cut connection after MS ms (0)\n"
    "  --pep                       rounds publish PEP items (rates: publishes/s) to the contacts\n"
    "  --pep-contacts K            with --pep: user i's contacts are i+-1..i+-K/2 mod users (even K)\n"
    "  --muc                       join group chat rooms; rounds send groupchat messages (msg/s)\n"
    "  --muc-rooms R               with --muc: user i joins room bench<i mod R> (1)\n"
    "  --muc-service S             with --muc: the rooms' service (conference.<domain>)\n"
    "  --muc-join-concurrency N    with --muc: joins in flight at once (50)\n"
    "  --muc-max-users M           with --muc: the config form sets muc#roomconfig_maxusers (off)\n"
    "  --hold-after S              idle seconds after the rounds, before logging out (0)\n"
    "  --peer-server H:P           federation: the second half of the users log in here...\n"
    "  --peer-domain D             ...as users of D, and receive what the first half sends\n";

enum {
    OPT_HOST = 256, OPT_PORT, OPT_DOMAIN, OPT_USERS, OPT_FIRST, OPT_USER_FORMAT,
    OPT_PASSWORD_FORMAT, OPT_MECH, OPT_TLS, OPT_SOURCES, OPT_LOGIN_CONCURRENCY, OPT_WARMUP,
    OPT_HOLD, OPT_KEEPALIVE, OPT_RATES, OPT_ROUND_SECONDS, OPT_STOP_P99_MS, OPT_DRAIN_SECONDS,
    OPT_RECONNECT, OPT_READY_FILE, OPT_TIMEOUT, OPT_SERVER, OPT_SM, OPT_SM_ACK_EVERY,
    OPT_CUT_AFTER, OPT_CUT_USERS, OPT_CUT_RETURN, OPT_PEP, OPT_PEP_CONTACTS, OPT_HOLD_AFTER,
    OPT_MUC, OPT_MUC_ROOMS, OPT_MUC_SERVICE, OPT_MUC_JOIN_CONCURRENCY, OPT_MUC_MAX_USERS, OPT_TRANSPORT,
    OPT_WS_PATH, OPT_PEER_SERVER, OPT_PEER_DOMAIN, OPT_HELP,
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"users", required_argument, NULL, OPT_USERS},
    {"first", required_argument, NULL, OPT_FIRST},
    {"user-format", required_argument, NULL, OPT_USER_FORMAT},
    {"password-format", required_argument, NULL, OPT_PASSWORD_FORMAT},
    {"mech", required_argument, NULL, OPT_MECH},
    {"tls", required_argument, NULL, OPT_TLS},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"ws-path", required_argument, NULL, OPT_WS_PATH},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"login-concurrency", required_argument, NULL, OPT_LOGIN_CONCURRENCY},
    {"warmup", no_argument, NULL, OPT_WARMUP},
    {"hold", required_argument, NULL, OPT_HOLD},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"rates", required_argument, NULL, OPT_RATES},
    {"round-seconds", required_argument, NULL, OPT_ROUND_SECONDS},
    {"stop-p99-ms", required_argument, NULL, OPT_STOP_P99_MS},
    {"drain-seconds", required_argument, NULL, OPT_DRAIN_SECONDS},
    {"reconnect", required_argument, NULL, OPT_RECONNECT},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"server", required_argument, NULL, OPT_SERVER},
    {"sm", no_argument, NULL, OPT_SM},
    {"sm-ack-every", required_argument, NULL, OPT_SM_ACK_EVERY},
    {"cut-after", required_argument, NULL, OPT_CUT_AFTER},
    {"cut-users", required_argument, NULL, OPT_CUT_USERS},
    {"cut-return", required_argument, NULL, OPT_CUT_RETURN},
    {"pep", no_argument, NULL, OPT_PEP},
    {"pep-contacts", required_argument, NULL, OPT_PEP_CONTACTS},
    {"hold-after", required_argument, NULL, OPT_HOLD_AFTER},
    {"muc", no_argument, NULL, OPT_MUC},
    {"muc-rooms", required_argument, NULL, OPT_MUC_ROOMS},
    {"muc-service", required_argument, NULL, OPT_MUC_SERVICE},
    {"muc-join-concurrency", required_argument, NULL, OPT_MUC_JOIN_CONCURRENCY},
    {"muc-max-users", required_argument, NULL, OPT_MUC_MAX_USERS},
    {"peer-server", required_argument, NULL, OPT_PEER_SERVER},
    {"peer-domain", required_argument, NULL, OPT_PEER_DOMAIN},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int bad(const char *what, const char *value)
{
    fprintf(stderr, "loadgen: bad %s \"%s\"\n%s", what, value, usage_text);
    return -1;
}

/* A whole decimal number in [min, max]. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+')
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, unsigned long min, unsigned long max, uint32_t *out)
{
    unsigned long v;
    if (parse_uint(s, min, max, &v) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_unsigned(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
    unsigned long v;
    if (parse_uint(s, min, max, &v) != 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_positive_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

/* Calls item on each comma-separated field of s (a NUL-terminated copy); an empty field, or an
 * item that fails, fails the list. */
static int parse_list(const char *s, lg_options *o, int (*item)(char *field, lg_options *o))
{
    char *copy = mem_strdup(s);
    int rc = 0;
    for (char *field = copy; rc == 0;) {
        char *comma = strchr(field, ',');
        if (comma)
            *comma = '\0';
        rc = *field ? item(field, o) : -1;
        if (!comma)
            break;
        field = comma + 1;
    }
    free(copy);
    return rc;
}

static int port_item(char *field, lg_options *o)
{
    uint32_t port;
    if (parse_u32(field, 1, 65535, &port) != 0)
        return -1;
    o->ports = mem_realloc(o->ports, (o->nports + 1) * sizeof(*o->ports));
    o->ports[o->nports++] = (uint16_t)port;
    return 0;
}

static int rate_item(char *field, lg_options *o)
{
    double rate;
    if (parse_positive_double(field, &rate) != 0)
        return -1;
    o->rates = mem_realloc(o->rates, (o->nrates + 1) * sizeof(*o->rates));
    o->rates[o->nrates++] = rate;
    return 0;
}

/* "A" or "A-B" (inclusive, A <= B); IPv4 only. */
static int source_item(char *field, lg_options *o)
{
    char *dash = strchr(field, '-');
    if (dash)
        *dash = '\0';
    struct in_addr lo, hi;
    if (inet_pton(AF_INET, field, &lo) != 1 || inet_pton(AF_INET, dash ? dash + 1 : field, &hi) != 1)
        return -1;
    uint32_t a = ntohl(lo.s_addr), b = ntohl(hi.s_addr);
    if (a > b || b - a >= 1u << 20 || o->nsources + (b - a) + 1 > 1u << 20)
        return -1;
    o->sources = mem_realloc(o->sources, (o->nsources + (b - a) + 1) * sizeof(*o->sources));
    for (uint64_t x = a; x <= b; x++)
        o->sources[o->nsources++] = (uint32_t)x;
    return 0;
}

static void addr_add(lg_options *o, const char *host, size_t host_len, uint16_t port)
{
    o->addrs = mem_realloc(o->addrs, (o->naddrs + 1) * sizeof(*o->addrs));
    o->addrs[o->naddrs].host = mem_strndup(host, host_len);
    o->addrs[o->naddrs++].port = port;
}

/* "host:port" or "[v6]:port". */
static int server_item(char *field, lg_options *o)
{
    char *colon = strrchr(field, ':');
    uint32_t port;
    if (!colon || colon == field || parse_u32(colon + 1, 1, 65535, &port) != 0)
        return -1;
    const char *host = field;
    size_t len = (size_t)(colon - field);
    if (host[0] == '[') {
        if (len < 3 || host[len - 1] != ']')
            return -1;
        host++;
        len -= 2;
    } else if (memchr(host, ':', len)) {
        return -1;   /* an IPv6 address needs its brackets */
    }
    addr_add(o, host, len, (uint16_t)port);
    return 0;
}

static void addrs_free(lg_options *o)
{
    for (size_t i = 0; i < o->naddrs; i++)
        free(o->addrs[i].host);
    free(o->addrs);
    o->addrs = NULL;
    o->naddrs = 0;
}

static int parse_servers(const char *s, lg_options *o)
{
    addrs_free(o);
    return parse_list(s, o, server_item);
}

static int parse_ports(const char *s, lg_options *o)
{
    free(o->ports);
    o->ports = NULL;
    o->nports = 0;
    return parse_list(s, o, port_item);
}

static int parse_rates(const char *s, lg_options *o)
{
    free(o->rates);
    o->rates = NULL;
    o->nrates = 0;
    return parse_list(s, o, rate_item);
}

static int parse_sources(const char *s, lg_options *o)
{
    free(o->sources);
    o->sources = NULL;
    o->nsources = 0;
    return parse_list(s, o, source_item);
}

/* Exactly one %u; any other % must be %%. */
static bool format_ok(const char *fmt)
{
    int conversions = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == 'u')
            conversions++;
        else if (p[1] != '%')
            return false;
        p++;
    }
    return conversions == 1;
}

/* Characters a JID's localpart or domain must not hold (RFC 7622 §3.3.1), plus what would need
 * escaping in an attribute, plus the whitespace and controls no sane test name contains. */
static bool jid_part_ok(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("\"&'/:<>@", *p))
            return false;
    return true;
}

int lg_options_format(const char *fmt, uint32_t n, char *out, size_t cap)
{
    size_t len = 0;
    for (const char *p = fmt; *p; p++) {
        char num[16];
        const char *piece = p;
        size_t piece_len = 1;
        if (*p == '%' && p[1] == 'u') {
            piece_len = (size_t)snprintf(num, sizeof(num), "%u", n);
            piece = num;
            p++;
        } else if (*p == '%' && p[1] == '%') {
            p++;
        }
        if (len + piece_len >= cap)
            return -1;
        memcpy(out + len, piece, piece_len);
        len += piece_len;
    }
    if (len >= cap)
        return -1;
    out[len] = '\0';
    return (int)len;
}

void lg_options_free(lg_options *o)
{
    free(o->ports);
    free(o->sources);
    free(o->rates);
    addrs_free(o);
    o->ports = NULL;
    o->sources = NULL;
    o->rates = NULL;
    o->nports = o->nsources = o->nrates = 0;
}

/* Federation mode (lg_fed.h): both peer options or neither, an even number of users, message
 * rounds over TCP only; the peer's address goes last in addrs. */
static int check_peer(lg_options *o)
{
    if (!o->peer_server && !o->peer_domain)
        return 0;
    if (!o->peer_server || !o->peer_domain)
        return bad("--peer-server or --peer-domain (each needs the other)", "");
    if (o->users < 2 || o->users % 2)
        return bad("--users (federation: an even number, half senders, half receivers)", "");
    if (o->pep || o->muc || o->sm || o->transport != LG_TRANSPORT_TCP || o->cut_after_s >= 0)
        return bad("--peer-server (message rounds over TCP only: no --pep, --muc, --sm, "
                   "--cut-after or websocket)", "");
    char *copy = mem_strdup(o->peer_server);
    int rc = strchr(copy, ',') ? -1 : server_item(copy, o);
    free(copy);
    return rc == 0 ? 0 : bad("--peer-server (one host:port)", o->peer_server);
}

int lg_options_parse(int argc, char **argv, lg_options *o)
{
    *o = (lg_options){
        .host = "127.0.0.1",
        .domain = "localhost",
        .first = 1,
        .user_format = "user%u",
        .password_format = "pass%u",
        .mech = LG_MECH_SCRAM_SHA1,
        .tls = LG_TLS_STARTTLS,
        .login_concurrency = 200,
        .keepalive_s = 60,
        .round_s = 10,
        .drain_s = 5,
        .timeout_s = 30,
        .sm_ack_every = 1,
        .cut_after_s = -1,
        .muc_join_concurrency = 50,
    };
    bool ports_set = false, tls_set = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case OPT_HOST:
            o->host = a;
            break;
        case OPT_PORT:
            if (parse_ports(a, o) != 0)
                return bad("--port", a);
            ports_set = true;
            break;
        case OPT_DOMAIN:
            if (!jid_part_ok(a))
                return bad("--domain", a);
            o->domain = a;
            break;
        case OPT_USERS:
            if (parse_u32(a, 1, 10000000, &o->users) != 0)
                return bad("--users", a);
            break;
        case OPT_FIRST:
            if (parse_u32(a, 0, UINT32_MAX, &o->first) != 0)
                return bad("--first", a);
            break;
        case OPT_USER_FORMAT:
            if (!format_ok(a) || !jid_part_ok(a))
                return bad("--user-format (one %u; no spaces or \"&'/:<>@)", a);
            o->user_format = a;
            break;
        case OPT_PASSWORD_FORMAT:
            if (!format_ok(a))
                return bad("--password-format (one %u)", a);
            o->password_format = a;
            break;
        case OPT_MECH:
            if (strcmp(a, "PLAIN") == 0)
                o->mech = LG_MECH_PLAIN;
            else if (strcmp(a, "SCRAM-SHA-1") == 0)
                o->mech = LG_MECH_SCRAM_SHA1;
            else
                return bad("--mech", a);
            break;
        case OPT_TLS:
            if (strcmp(a, "none") == 0)
                o->tls = LG_TLS_NONE;
            else if (strcmp(a, "starttls") == 0)
                o->tls = LG_TLS_STARTTLS;
            else if (strcmp(a, "direct") == 0)
                o->tls = LG_TLS_DIRECT;
            else
                return bad("--tls", a);
            tls_set = true;
            break;
        case OPT_TRANSPORT:
            if (strcmp(a, "tcp") == 0)
                o->transport = LG_TRANSPORT_TCP;
            else if (strcmp(a, "websocket") == 0)
                o->transport = LG_TRANSPORT_WEBSOCKET;
            else
                return bad("--transport", a);
            break;
        case OPT_WS_PATH:
            if (a[0] != '/' || strpbrk(a, " \t\r\n"))
                return bad("--ws-path (begins with /, no spaces)", a);
            o->ws_path = a;
            break;
        case OPT_SOURCES:
            if (parse_sources(a, o) != 0)
                return bad("--sources", a);
            break;
        case OPT_LOGIN_CONCURRENCY:
            if (parse_unsigned(a, 1, 1000000, &o->login_concurrency) != 0)
                return bad("--login-concurrency", a);
            break;
        case OPT_WARMUP:
            o->warmup = true;
            break;
        case OPT_HOLD:
            if (parse_unsigned(a, 0, 86400 * 7, &o->hold_s) != 0)
                return bad("--hold", a);
            break;
        case OPT_KEEPALIVE:
            if (parse_unsigned(a, 0, 86400, &o->keepalive_s) != 0)
                return bad("--keepalive", a);
            break;
        case OPT_RATES:
            if (parse_rates(a, o) != 0)
                return bad("--rates", a);
            break;
        case OPT_ROUND_SECONDS:
            if (parse_unsigned(a, 1, 86400, &o->round_s) != 0)
                return bad("--round-seconds", a);
            break;
        case OPT_STOP_P99_MS:
            if (parse_positive_double(a, &o->stop_p99_ms) != 0)
                return bad("--stop-p99-ms", a);
            break;
        case OPT_DRAIN_SECONDS:
            if (parse_unsigned(a, 0, 86400, &o->drain_s) != 0)
                return bad("--drain-seconds", a);
            break;
        case OPT_RECONNECT:
            if (parse_unsigned(a, 1, 86400, &o->reconnect_s) != 0)
                return bad("--reconnect", a);
            break;
        case OPT_READY_FILE:
            o->ready_file = a;
            break;
        case OPT_TIMEOUT:
            if (parse_unsigned(a, 1, 86400, &o->timeout_s) != 0)
                return bad("--timeout", a);
            break;
        case OPT_SERVER:
            if (parse_servers(a, o) != 0)
                return bad("--server (host:port, [v6]:port, comma-separated)", a);
            break;
        case OPT_SM:
            o->sm = true;
            break;
        case OPT_SM_ACK_EVERY:
            if (parse_unsigned(a, 0, 1000000, &o->sm_ack_every) != 0)
                return bad("--sm-ack-every", a);
            break;
        case OPT_CUT_AFTER: {
            unsigned v;
            if (parse_unsigned(a, 0, 86400, &v) != 0)
                return bad("--cut-after", a);
            o->cut_after_s = (int)v;
            break;
        }
        case OPT_CUT_USERS:
            if (parse_u32(a, 1, 10000000, &o->cut_users) != 0)
                return bad("--cut-users", a);
            break;
        case OPT_CUT_RETURN: {
            unsigned v;
            if (strcmp(a, "never") == 0)
                o->cut_return_ms = -1;
            else if (parse_unsigned(a, 0, 86400000, &v) == 0)
                o->cut_return_ms = (int)v;
            else
                return bad("--cut-return", a);
            break;
        }
        case OPT_PEP:
            o->pep = true;
            break;
        case OPT_PEP_CONTACTS:
            if (parse_u32(a, 2, 1000000, &o->pep_contacts) != 0 || o->pep_contacts % 2)
                return bad("--pep-contacts (an even number, at least 2)", a);
            break;
        case OPT_HOLD_AFTER:
            if (parse_unsigned(a, 0, 86400 * 7, &o->hold_after_s) != 0)
                return bad("--hold-after", a);
            break;
        case OPT_MUC:
            o->muc = true;
            break;
        case OPT_MUC_ROOMS:
            if (parse_u32(a, 1, 1000000, &o->muc_rooms) != 0)
                return bad("--muc-rooms", a);
            break;
        case OPT_MUC_SERVICE:
            if (!jid_part_ok(a))
                return bad("--muc-service", a);
            o->muc_service = a;
            break;
        case OPT_MUC_JOIN_CONCURRENCY:
            if (parse_unsigned(a, 1, 1000000, &o->muc_join_concurrency) != 0)
                return bad("--muc-join-concurrency", a);
            break;
        case OPT_MUC_MAX_USERS:
            if (parse_u32(a, 1, 10000000, &o->muc_max_users) != 0)
                return bad("--muc-max-users", a);
            break;
        case OPT_PEER_SERVER:
            o->peer_server = a;
            break;
        case OPT_PEER_DOMAIN:
            if (!jid_part_ok(a))
                return bad("--peer-domain", a);
            o->peer_domain = a;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 1;
        default:
            return bad("option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad("argument", argv[optind]);
    if (!o->users) {
        fprintf(stderr, "loadgen: --users is required\n%s", usage_text);
        return -1;
    }
    if ((uint64_t)o->first + o->users - 1 > UINT32_MAX)
        return bad("--first (the last user number overflows)", "");
    if (!ports_set) {
        o->ports = mem_alloc(sizeof(*o->ports));
        o->ports[0] = 5222;
        o->nports = 1;
    }
    if (!o->naddrs)
        for (size_t i = 0; i < o->nports; i++)
            addr_add(o, o->host, strlen(o->host), o->ports[i]);
    if (o->ws_path && o->transport != LG_TRANSPORT_WEBSOCKET)
        return bad("--ws-path (without --transport websocket)", o->ws_path);
    if (o->transport == LG_TRANSPORT_WEBSOCKET) {
        if (!tls_set)
            o->tls = LG_TLS_NONE;
        if (o->tls == LG_TLS_STARTTLS)
            return bad("--tls (websocket: none or direct)", "starttls");
        if (!o->ws_path)
            o->ws_path = "/xmpp-websocket";
    }
    if (o->cut_users > o->users)
        return bad("--cut-users (more than --users)", "");
    if (o->pep && !o->pep_contacts)
        return bad("--pep (needs --pep-contacts)", "");
    if (o->pep_contacts && !o->pep)
        return bad("--pep-contacts (without --pep)", "");
    if (o->pep_contacts >= o->users)
        return bad("--pep-contacts (as many as --users or more)", "");
    if (o->muc && o->pep)
        return bad("--muc with --pep", "");
    if ((o->muc_rooms || o->muc_service || o->muc_max_users) && !o->muc)
        return bad("--muc-rooms, --muc-service or --muc-max-users (without --muc)", "");
    if (o->muc && !o->muc_rooms)
        o->muc_rooms = 1;
    if (o->muc_rooms > o->users)
        return bad("--muc-rooms (more rooms than --users)", "");
    if (check_peer(o) != 0)
        return -1;
    /* Rates times seconds is how many messages a round tracks, one entry each. */
    for (size_t i = 0; i < o->nrates; i++)
        if (o->rates[i] * o->round_s > 2e8)
            return bad("--rates times --round-seconds (at most 200,000,000 messages a round)", "");
    return 0;
}
