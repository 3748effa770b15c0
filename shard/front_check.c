/* shard/front_check.c — `jabshard-c2s --check` (front_check.h): the configuration has loaded
 * (its errors name file, line and element before this runs); then the certificate clients will
 * be shown (readable, its key, valid now and for 30 more days, naming every <local><id>), the
 * client ports, the SM it links to (one of its addresses, with standbys), the open-file limit <max_fds> needs, and a secret left at
 * the example's value; the web ports and the upload directory when <http> is there. */
#include "shard/front_check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/check.h"
#include "core/mem.h"

/* The SM link: one SM of <sm> accepts connections. A standby that does not is normal (it is
 * started when the active one is gone: docs/deployment.md, "Standby SM"); none at all is a
 * warning, as for one SM. */
static void check_sm(check_list *l, const front_config *cfg)
{
    if (cfg->nsms == 1) {
        check_reach(l, cfg->sms[0].host, cfg->sms[0].port, "the SM link");
        return;
    }
    int accepting = 0;
    int *up = mem_array(cfg->nsms, sizeof *up);
    for (size_t i = 0; i < cfg->nsms; i++) {
        up[i] = check_accepts(cfg->sms[i].host, cfg->sms[i].port);
        accepting += up[i] > 0;
        if (up[i] < 0)
            check_warn(l, "the SM link: cannot resolve '%s' (SM %zu of %zu)", cfg->sms[i].host,
                       i + 1, cfg->nsms);
        else if (up[i])
            check_ok(l, "the SM link: %s port %d accepts connections (SM %zu of %zu)",
                     cfg->sms[i].host, cfg->sms[i].port, i + 1, cfg->nsms);
    }
    for (size_t i = 0; i < cfg->nsms; i++)
        if (!up[i] && accepting)
            check_ok(l, "the SM link: nothing accepts connections on %s port %d (SM %zu of %zu): "
                        "one SM runs at a time", cfg->sms[i].host, cfg->sms[i].port, i + 1,
                     cfg->nsms);
    if (!accepting)
        check_warn(l, "the SM link: nothing accepts connections on any of its %zu SMs (not "
                      "started yet?)", cfg->nsms);
    free(up);
}

int front_check(const front_config *cfg, const char *path)
{
    check_list l = {.program = "jabshard-c2s"};
    check_ok(&l, "%s: configuration read: %zu host(s), %u IO threads, max_fds %u", path,
             cfg->nhosts, cfg->threads, cfg->max_fds);
    check_certificate(&l, cfg->pemfile, NULL, (const char *const *)cfg->hosts);
    check_listen(&l, cfg->ip, cfg->port, "clients (STARTTLS)");
    check_listen(&l, cfg->ip, cfg->ssl_port, "clients (direct TLS)");
    check_sm(&l, cfg);
    const front_http *h = &cfg->http;
    if (h->on && h->port)
        check_listen(&l, h->ip, h->port, "web clients (HTTP)");
    if (h->on && h->tls_port)
        check_listen(&l, h->ip, h->tls_port, "web clients (HTTPS)");
    if (h->upload.on && access(h->upload.dir, W_OK | X_OK) != 0)
        check_warn(&l, "<http><upload><dir> '%s' is not a writable directory (yet): uploads need "
                       "one", h->upload.dir);
    if (h->upload.on && !strcmp(h->upload.secret, "change-this-upload-secret"))
        check_warn(&l, "<http><upload><secret> is the example's: anyone may sign uploads");
    unsigned need = front_shard_slots(cfg->max_fds, cfg->threads) * cfg->threads + 64;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < need)
        check_warn(&l, "the open-file limit is %llu, below the %u that <max_fds> %u needs: raise "
                       "it (LimitNOFILE=, ulimit -n) or lower max_fds",
                   (unsigned long long)rl.rlim_max, need, cfg->max_fds);
    if (!strcmp(cfg->sm_secret, "secret"))
        check_warn(&l, "<sm><secret> is the example's 'secret': anyone who reaches the SM's port "
                       "can speak for every account");
    return check_finish(&l, path);
}
