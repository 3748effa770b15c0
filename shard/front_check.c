/* shard/front_check.c — `jabshard-c2s --check` (front_check.h): the configuration has loaded
 * (its errors name file, line and element before this runs); then the certificate clients will
 * be shown (readable, its key, valid now and for 30 more days, naming every <local><id>), the
 * client ports, the SM it links to, the open-file limit <max_fds> needs, and a secret left at
 * the example's value; the web ports and the upload directory when <http> is there. */
#include "shard/front_check.h"

#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/check.h"

int front_check(const front_config *cfg, const char *path)
{
    check_list l = {.program = "jabshard-c2s"};
    check_ok(&l, "%s: configuration read: %zu host(s), %u IO threads, max_fds %u", path,
             cfg->nhosts, cfg->threads, cfg->max_fds);
    check_certificate(&l, cfg->pemfile, NULL, (const char *const *)cfg->hosts);
    check_listen(&l, cfg->ip, cfg->port, "clients (STARTTLS)");
    check_listen(&l, cfg->ip, cfg->ssl_port, "clients (direct TLS)");
    check_reach(&l, cfg->sm_host, cfg->sm_port, "the SM link");
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
