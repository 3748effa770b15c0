/* tests/unit/test_s2s_resolve.c — s2s/resolve.c against a real unbound (/usr/sbin/unbound in the
 * foreground on a free loopback port, its zone in a scratch directory): the SRV lookup of both
 * services and its merge, "." records, the fallback, address lookups (AAAA before A, one family
 * only, the hosts file, literals), failures and timeouts, cancellation, and freeing a resolver with
 * queries pending. Every answer must come from the loop, never from inside the call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/log.h"
#include "s2s/resolve.h"
#include "tests/support/net.h"
#include "tests/support/tmp.h"

#define UNBOUND "/usr/sbin/unbound"
#define WAIT_MS 20000

static char *dir;
static int dns_port;
static pid_t unbound_pid = -1;
static evloop *loop;
static char fwd[64];

/* Not under "test.": libunbound, like unbound, serves RFC 6761's special names (test., invalid.,
 * onion. ...) itself as empty static zones, and never forwards them: every name there is NXDOMAIN. */
static const char zone[] =
    "    local-zone: \"example.jstest.\" static\n"
    "    local-data: \"ready.example.jstest. 60 IN A 192.0.2.99\"\n"
    /* _xmpp-server only */
    "    local-data: \"_xmpp-server._tcp.plain.example.jstest. 60 IN SRV 10 0 5270 b.plain.example.jstest.\"\n"
    "    local-data: \"_xmpp-server._tcp.plain.example.jstest. 60 IN SRV 5 0 5269 a.plain.example.jstest.\"\n"
    /* _xmpps-server only */
    "    local-data: \"_xmpps-server._tcp.tls.example.jstest. 60 IN SRV 1 1 443 xmpps.tls.example.jstest.\"\n"
    /* both, interleaved priorities */
    "    local-data: \"_xmpps-server._tcp.both.example.jstest. 60 IN SRV 5 1 5223 d.both.example.jstest.\"\n"
    "    local-data: \"_xmpp-server._tcp.both.example.jstest. 60 IN SRV 1 1 5269 s1.both.example.jstest.\"\n"
    "    local-data: \"_xmpp-server._tcp.both.example.jstest. 60 IN SRV 9 1 5269 s9.both.example.jstest.\"\n"
    /* "." */
    "    local-data: \"_xmpp-server._tcp.dot.example.jstest. 60 IN SRV 0 0 0 .\"\n"
    "    local-data: \"_xmpp-server._tcp.dotboth.example.jstest. 60 IN SRV 0 0 0 .\"\n"
    "    local-data: \"_xmpps-server._tcp.dotboth.example.jstest. 60 IN SRV 0 0 0 .\"\n"
    "    local-data: \"_xmpps-server._tcp.halfdot.example.jstest. 60 IN SRV 0 0 0 .\"\n"
    "    local-data: \"_xmpp-server._tcp.halfdot.example.jstest. 60 IN SRV 0 0 5269 x.halfdot.example.jstest.\"\n"
    /* no SRV, but the name exists (NODATA) */
    "    local-data: \"nosrv.example.jstest. 60 IN A 192.0.2.10\"\n"
    /* addresses */
    "    local-data: \"dual.example.jstest. 60 IN A 192.0.2.1\"\n"
    "    local-data: \"dual.example.jstest. 60 IN AAAA 2001:db8::1\"\n"
    "    local-data: \"dual.example.jstest. 60 IN AAAA 2001:db8::2\"\n"
    "    local-data: \"v6only.example.jstest. 60 IN AAAA 2001:db8::6\"\n"
    "    local-data: \"v4only.example.jstest. 60 IN A 192.0.2.4\"\n"
    "    local-data: \"alias.example.jstest. 60 IN CNAME v4only.example.jstest.\"\n"
    "    local-zone: \"refused.jstest.\" refuse\n";

/* ---- the unbound server ------------------------------------------------------------------ */

/* A DNS query for ready.example.jstest A over UDP: whether the server answers yet. */
static bool dns_answers(void)
{
    static const uint8_t query[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
        5, 'r', 'e', 'a', 'd', 'y', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 6, 'j', 's', 't', 'e', 's', 't', 0,
        0, 1, 0, 1,
    };
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    struct timeval tv = { .tv_usec = 200 * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)dns_port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint8_t reply[512];
    bool ok = sendto(fd, query, sizeof(query), 0, (struct sockaddr *)&sin, sizeof(sin)) > 0 &&
              recv(fd, reply, sizeof(reply), 0) >= 12 && reply[0] == 0x12 && reply[1] == 0x34;
    close(fd);
    return ok;
}

static void unbound_stop(void)
{
    if (unbound_pid > 0) {
        kill(unbound_pid, SIGTERM);
        waitpid(unbound_pid, NULL, 0);
        unbound_pid = -1;
    }
}

static int unbound_start(void)
{
    dns_port = net_free_port();
    if (dns_port < 0)
        return -1;
    char *conf = tmp_write(dir, "unbound.conf",
                           "server:\n"
                           "    interface: 127.0.0.1@%d\n"
                           "    do-daemonize: no\n"
                           "    username: \"\"\n"
                           "    chroot: \"\"\n"
                           "    directory: \"%s\"\n"
                           "    pidfile: \"\"\n"
                           "    use-syslog: no\n"
                           "    logfile: \"\"\n"
                           "    do-not-query-localhost: no\n"
                           "    num-threads: 1\n"
                           "    do-ip6: no\n"
                           "    so-reuseport: no\n"
                           "%s"
                           "remote-control:\n"
                           "    control-enable: no\n",
                           dns_port, dir, zone);
    char *log = tmp_path(dir, "unbound.log");
    if (!conf || !log) {
        free(conf);
        free(log);
        return -1;
    }
    pid_t parent = getpid();
    unbound_pid = fork();
    if (unbound_pid < 0)
        return -1;
    if (unbound_pid == 0) {
        /* Dies with the test, even if the test dies first. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(UNBOUND, "unbound", "-d", "-c", conf, (char *)NULL);
        _exit(127);
    }
    free(conf);
    free(log);
    for (int i = 0; i < 100; i++) {          /* 100 * (200 ms at most): 20 s */
        if (dns_answers())
            return 0;
        if (waitpid(unbound_pid, NULL, WNOHANG) == unbound_pid) {
            unbound_pid = -1;
            fprintf(stderr, "unbound exited; see its log\n");
            return -1;
        }
        usleep(50 * 1000);
    }
    unbound_stop();
    return -1;
}

static int setup(void **state)
{
    dir = tmp_dir("test_s2s_resolve");
    if (!dir)
        return -1;
    char *log = tmp_path(dir, "test.log");
    char *hosts = tmp_write(dir, "hosts", "198.51.100.7 fromhosts.example\n");
    char *resolv = tmp_write(dir, "resolv.conf", "nameserver 127.0.0.1\n");
    bool ok = log && hosts && resolv &&
              log_open("test_s2s_resolve", LOG_TO_FILE, log, LL_DEBUG) == 0;
    free(log);
    free(hosts);
    free(resolv);
    if (!ok)
        return -1;
    loop = evloop_create();
    if (!loop || unbound_start() < 0)
        return -1;
    snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", dns_port);
    return 0;
}

static int teardown(void **state)
{
    unbound_stop();
    evloop_destroy(loop);
    log_open("test_s2s_resolve", LOG_TO_STDERR, NULL, LL_INFO);
    tmp_dir_remove(dir);
    return 0;
}

/* A resolver on the test's unbound (timeout_ms 0: the default). */
static s2s_resolver *resolver(const char *forward, uint64_t timeout_ms)
{
    char err[256] = "";
    char *hosts = tmp_path(dir, "hosts"), *resolv = tmp_path(dir, "resolv.conf");
    s2s_resolver *r = s2s_resolver_new(loop, resolv, hosts, err, sizeof(err));
    free(hosts);
    free(resolv);
    if (!r)
        fail_msg("s2s_resolver_new: %s", err);
    if (s2s_resolver_forward(r, forward) != 0)
        fail_msg("s2s_resolver_forward %s refused", forward);
    if (timeout_ms)
        s2s_resolver_set_timeout(r, timeout_ms);
    return r;
}

/* ---- answers, collected from the loop ---------------------------------------------------- */

typedef struct result {
    int calls;
    int status;
    size_t n;
    s2s_target targets[S2S_TARGETS_MAX];
    struct sockaddr_storage addrs[S2S_ADDRS_MAX];
} result;

static int answers_due;
static bool inside_call;     /* a callback seen while this is set came from inside the call */

static void answered(void)
{
    assert_false(inside_call);
    if (--answers_due <= 0)
        evloop_stop(loop);
}

static void on_srv(void *arg, int status, const s2s_target *targets, size_t n)
{
    result *res = arg;
    res->calls++;
    res->status = status;
    res->n = n;
    assert_true(n <= S2S_TARGETS_MAX);
    memcpy(res->targets, targets, n * sizeof(*targets));
    answered();
}

static void on_addr(void *arg, int status, const struct sockaddr_storage *addrs, size_t n)
{
    result *res = arg;
    res->calls++;
    res->status = status;
    res->n = n;
    assert_true(n <= S2S_ADDRS_MAX);
    memcpy(res->addrs, addrs, n * sizeof(*addrs));
    answered();
}

static void on_guard(timer *t, void *arg)
{
    evloop_stop(loop);
}

/* Runs the loop until `count` answers came, failing after WAIT_MS. */
static void wait_answers(int count)
{
    answers_due = count;
    timer guard;
    timer_init(&guard, on_guard, NULL);
    evloop_timer_after(loop, &guard, WAIT_MS);
    evloop_run(loop);
    evloop_timer_cancel(loop, &guard);
    assert_int_equal(answers_due, 0);
}

static s2s_query *srv(s2s_resolver *r, const char *domain, result *res)
{
    memset(res, 0, sizeof(*res));
    inside_call = true;
    s2s_query *q = s2s_resolve_srv(r, domain, on_srv, res);
    inside_call = false;
    assert_non_null(q);
    return q;
}

static s2s_query *addr(s2s_resolver *r, const char *host, uint16_t port, result *res)
{
    memset(res, 0, sizeof(*res));
    inside_call = true;
    s2s_query *q = s2s_resolve_addr(r, host, port, on_addr, res);
    inside_call = false;
    assert_non_null(q);
    return q;
}

static void assert_target(const s2s_target *t, const char *host, uint16_t port, bool tls)
{
    assert_string_equal(t->host, host);
    assert_int_equal(t->port, port);
    assert_int_equal(t->direct_tls, tls);
}

static void assert_addr(const struct sockaddr_storage *ss, const char *expected, uint16_t port)
{
    char text[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
        assert_int_equal(ntohs(s6->sin6_port), port);
    } else {
        assert_int_equal(ss->ss_family, AF_INET);
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text));
        assert_int_equal(ntohs(s4->sin_port), port);
    }
    assert_string_equal(text, expected);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_srv_services(void **state)
{
    s2s_resolver *r = resolver(fwd, 0);
    result plain, tls, both, halfdot;
    srv(r, "plain.example.jstest", &plain);
    srv(r, "tls.example.jstest", &tls);
    srv(r, "both.example.jstest", &both);
    srv(r, "halfdot.example.jstest", &halfdot);
    wait_answers(4);

    assert_int_equal(plain.calls, 1);
    assert_int_equal(plain.status, S2S_RESOLVE_OK);
    assert_int_equal(plain.n, 2);
    assert_target(&plain.targets[0], "a.plain.example.jstest", 5269, false);
    assert_target(&plain.targets[1], "b.plain.example.jstest", 5270, false);

    assert_int_equal(tls.status, S2S_RESOLVE_OK);
    assert_int_equal(tls.n, 1);
    assert_target(&tls.targets[0], "xmpps.tls.example.jstest", 443, true);

    assert_int_equal(both.status, S2S_RESOLVE_OK);
    assert_int_equal(both.n, 3);
    assert_target(&both.targets[0], "s1.both.example.jstest", 5269, false);
    assert_target(&both.targets[1], "d.both.example.jstest", 5223, true);
    assert_target(&both.targets[2], "s9.both.example.jstest", 5269, false);

    assert_int_equal(halfdot.status, S2S_RESOLVE_OK);
    assert_int_equal(halfdot.n, 1);
    assert_target(&halfdot.targets[0], "x.halfdot.example.jstest", 5269, false);
    s2s_resolver_free(r);
}

static void test_srv_no_service_and_fallback(void **state)
{
    s2s_resolver *r = resolver(fwd, 0);
    result dot, dotboth, nosrv, nx, bad;
    srv(r, "dot.example.jstest", &dot);
    srv(r, "dotboth.example.jstest", &dotboth);
    srv(r, "nosrv.example.jstest", &nosrv);
    srv(r, "nx.example.jstest", &nx);
    srv(r, "bad_domain.example.jstest", &bad);
    wait_answers(5);

    assert_int_equal(dot.status, S2S_RESOLVE_NO_SERVICE);
    assert_int_equal(dot.n, 0);
    assert_int_equal(dotboth.status, S2S_RESOLVE_NO_SERVICE);
    assert_int_equal(dotboth.n, 0);
    /* RFC 6120 §3.2.2: no SRV at all, the domain itself on 5269 (NODATA and NXDOMAIN alike). */
    assert_int_equal(nosrv.status, S2S_RESOLVE_OK);
    assert_int_equal(nosrv.n, 1);
    assert_target(&nosrv.targets[0], "nosrv.example.jstest", 5269, false);
    assert_int_equal(nx.status, S2S_RESOLVE_OK);
    assert_int_equal(nx.n, 1);
    assert_target(&nx.targets[0], "nx.example.jstest", 5269, false);
    assert_int_equal(bad.status, S2S_RESOLVE_FAILED);
    assert_int_equal(bad.calls, 1);
    s2s_resolver_free(r);
}

static void test_addresses(void **state)
{
    s2s_resolver *r = resolver(fwd, 0);
    result dual, v6, v4, alias, none, hosts, lit4, lit6, bare6, invalid;
    addr(r, "dual.example.jstest", 5269, &dual);
    addr(r, "v6only.example.jstest", 1, &v6);
    addr(r, "v4only.example.jstest", 2, &v4);
    addr(r, "alias.example.jstest", 3, &alias);
    addr(r, "nx.example.jstest", 4, &none);
    addr(r, "fromhosts.example", 5, &hosts);
    addr(r, "192.0.2.55", 6, &lit4);
    addr(r, "[2001:db8::5]", 7, &lit6);
    addr(r, "2001:db8::7", 8, &bare6);
    addr(r, "not a host", 9, &invalid);
    wait_answers(10);

    assert_int_equal(dual.status, S2S_RESOLVE_OK);
    assert_int_equal(dual.n, 3);
    assert_int_equal(dual.addrs[0].ss_family, AF_INET6);
    assert_int_equal(dual.addrs[1].ss_family, AF_INET6);
    assert_addr(&dual.addrs[2], "192.0.2.1", 5269);
    char a0[INET6_ADDRSTRLEN], a1[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&dual.addrs[0])->sin6_addr, a0, sizeof(a0));
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&dual.addrs[1])->sin6_addr, a1, sizeof(a1));
    assert_true((!strcmp(a0, "2001:db8::1") && !strcmp(a1, "2001:db8::2")) ||
                (!strcmp(a0, "2001:db8::2") && !strcmp(a1, "2001:db8::1")));

    assert_int_equal(v6.status, S2S_RESOLVE_OK);
    assert_int_equal(v6.n, 1);
    assert_addr(&v6.addrs[0], "2001:db8::6", 1);
    assert_int_equal(v4.status, S2S_RESOLVE_OK);
    assert_int_equal(v4.n, 1);
    assert_addr(&v4.addrs[0], "192.0.2.4", 2);
    assert_int_equal(alias.status, S2S_RESOLVE_OK);
    assert_int_equal(alias.n, 1);
    assert_addr(&alias.addrs[0], "192.0.2.4", 3);
    assert_int_equal(none.status, S2S_RESOLVE_NOT_FOUND);
    assert_int_equal(none.n, 0);
    assert_int_equal(hosts.status, S2S_RESOLVE_OK);
    assert_int_equal(hosts.n, 1);
    assert_addr(&hosts.addrs[0], "198.51.100.7", 5);
    assert_int_equal(lit4.n, 1);
    assert_addr(&lit4.addrs[0], "192.0.2.55", 6);
    assert_int_equal(lit6.n, 1);
    assert_addr(&lit6.addrs[0], "2001:db8::5", 7);
    assert_int_equal(bare6.n, 1);
    assert_addr(&bare6.addrs[0], "2001:db8::7", 8);
    assert_int_equal(invalid.status, S2S_RESOLVE_NOT_FOUND);
    assert_int_equal(invalid.calls, 1);
    s2s_resolver_free(r);
}

static void test_failures(void **state)
{
    /* The server refuses the zone: a failure, not "no records" (so no fallback). */
    s2s_resolver *r = resolver(fwd, 5000);
    result refused_srv, refused_addr;
    srv(r, "x.refused.jstest", &refused_srv);
    addr(r, "x.refused.jstest", 1, &refused_addr);
    wait_answers(2);
    assert_int_equal(refused_srv.status, S2S_RESOLVE_FAILED);
    assert_int_equal(refused_srv.n, 0);
    assert_int_equal(refused_addr.status, S2S_RESOLVE_FAILED);
    assert_int_equal(refused_addr.n, 0);
    s2s_resolver_free(r);

    /* Nobody answers: the deadline. */
    int silent = socket(AF_INET, SOCK_DGRAM, 0);   /* bound, never read: queries vanish */
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(silent, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(silent, (struct sockaddr *)&sin, &len), 0);
    char dead[64];
    snprintf(dead, sizeof(dead), "127.0.0.1@%d", ntohs(sin.sin_port));
    r = resolver(dead, 300);
    result slow_srv, slow_addr;
    uint64_t start = timer_now_ms();
    srv(r, "plain.example.jstest", &slow_srv);
    addr(r, "dual.example.jstest", 1, &slow_addr);
    wait_answers(2);
    assert_true(timer_now_ms() - start < 5000);
    assert_int_equal(slow_srv.status, S2S_RESOLVE_FAILED);
    assert_int_equal(slow_addr.status, S2S_RESOLVE_FAILED);
    s2s_resolver_free(r);
    close(silent);
}

static void test_cancel_and_free(void **state)
{
    s2s_resolver *r = resolver(fwd, 0);
    result cancelled, kept, lit_cancelled;
    s2s_query *q = srv(r, "both.example.jstest", &cancelled);
    s2s_query *lq = addr(r, "192.0.2.1", 1, &lit_cancelled);
    srv(r, "plain.example.jstest", &kept);
    s2s_resolve_cancel(q);
    s2s_resolve_cancel(lq);
    wait_answers(1);
    assert_int_equal(kept.calls, 1);
    /* Let any late answer for the cancelled query arrive: none must be delivered. */
    result later;
    addr(r, "v4only.example.jstest", 1, &later);
    wait_answers(1);
    assert_int_equal(cancelled.calls, 0);
    assert_int_equal(lit_cancelled.calls, 0);

    /* Freed with queries pending: no callback, nothing leaked (ASan). */
    result pending1, pending2;
    srv(r, "tls.example.jstest", &pending1);
    addr(r, "dual.example.jstest", 1, &pending2);
    s2s_resolver_free(r);
    assert_int_equal(pending1.calls, 0);
    assert_int_equal(pending2.calls, 0);
}

/* A callback may start a new query and cancel its own (a no-op there). */
static s2s_resolver *chain_r;
static result chain_second;

static s2s_query *chain_q;

static void on_chain(void *arg, int status, const s2s_target *targets, size_t n)
{
    s2s_resolve_cancel(chain_q);             /* its own: nothing happens */
    answers_due++;                           /* one more to wait for */
    on_srv(arg, status, targets, n);
    memset(&chain_second, 0, sizeof(chain_second));
    s2s_resolve_addr(chain_r, targets[0].host, targets[0].port, on_addr, &chain_second);
}

static void test_chained(void **state)
{
    chain_r = resolver(fwd, 0);
    result first = { 0 };
    chain_q = s2s_resolve_srv(chain_r, "nosrv.example.jstest", on_chain, &first);
    wait_answers(1);
    assert_int_equal(first.calls, 1);
    assert_int_equal(chain_second.calls, 1);
    assert_int_equal(chain_second.status, S2S_RESOLVE_OK);
    assert_addr(&chain_second.addrs[0], "192.0.2.10", 5269);
    /* Configuration after the first query is refused. */
    assert_int_equal(s2s_resolver_forward(chain_r, fwd), -1);
    s2s_resolver_free(chain_r);
}

static void test_new_errors(void **state)
{
    char err[256] = "";
    char *missing = tmp_path(dir, "missing.conf");
    assert_null(s2s_resolver_new(loop, missing, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "missing.conf"));
    err[0] = '\0';
    assert_null(s2s_resolver_new(loop, NULL, missing, err, sizeof(err)));
    assert_true(err[0] != '\0');
    free(missing);
    s2s_resolver *r = s2s_resolver_new(loop, NULL, NULL, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(s2s_resolver_forward(r, "not an address"), -1);
    s2s_resolver_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srv_services),
        cmocka_unit_test(test_srv_no_service_and_fallback),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_cancel_and_free),
        cmocka_unit_test(test_chained),
        cmocka_unit_test(test_new_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
