/* tests/bench/loadgen/lg_net.c — address resolution, source-address binding and non-blocking
 * connects for the load generator (see lg_net.h). */
#include "tests/bench/loadgen/lg_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/mem.h"

int lg_net_init(lg_net *net, const lg_options *o)
{
    *net = (lg_net){.sources = o->sources, .nsources = o->nsources, .naddrs = o->naddrs};
    net->dst = mem_array(o->naddrs, sizeof(*net->dst));
    net->dst_len = mem_array(o->naddrs, sizeof(*net->dst_len));
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = o->sources ? AF_INET : AF_UNSPEC};
    for (size_t i = 0; i < o->naddrs; i++) {
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(o->addrs[i].host, NULL, &hints, &res);
        if (rc != 0 || !res) {
            fprintf(stderr, "loadgen: cannot resolve %s%s: %s\n", o->addrs[i].host,
                    o->sources ? " as IPv4 (--sources are IPv4)" : "", gai_strerror(rc));
            lg_net_free(net);
            return -1;
        }
        memcpy(&net->dst[i], res->ai_addr, res->ai_addrlen);
        net->dst_len[i] = res->ai_addrlen;
        if (res->ai_family == AF_INET)
            ((struct sockaddr_in *)&net->dst[i])->sin_port = htons(o->addrs[i].port);
        else
            ((struct sockaddr_in6 *)&net->dst[i])->sin6_port = htons(o->addrs[i].port);
        freeaddrinfo(res);
    }
    return 0;
}

void lg_net_free(lg_net *net)
{
    free(net->dst);
    free(net->dst_len);
    *net = (lg_net){0};
}

int lg_net_connect(lg_net *net, uint32_t slot)
{
    const struct sockaddr_storage *dst = &net->dst[slot % net->naddrs];
    int fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    /* Messages are small and measured one by one: Nagle would hold each behind the last ACK. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (net->nsources) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in src = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(net->sources[net->next_source])};
        net->next_source = (net->next_source + 1) % net->nsources;
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)dst, net->dst_len[slot % net->naddrs]) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

uint64_t lg_net_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

void lg_net_describe(const lg_net *net, uint32_t slot, char *out, size_t cap)
{
    const struct sockaddr_storage *dst = &net->dst[slot % net->naddrs];
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port;
    if (dst->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)dst;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
        port = ntohs(in->sin_port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)dst;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, "%s:%u", addr, port);
}
