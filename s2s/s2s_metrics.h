/* s2s/s2s_metrics.h — the Prometheus endpoint of a jabshard-s2s box (<metrics><ip/><port/>, off
 * without the element): its streams by direction, connections, remote domains it routes to, the
 * SM link, stanzas in and out, bounces, authentications by method and failures, refused
 * connections, and the process. Read when scraped, from the counters the parts keep
 * (s2s_server.h). On the s2s loop's thread.
 */
#ifndef JABSHARD_S2S_S2S_METRICS_H
#define JABSHARD_S2S_S2S_METRICS_H
#include <stddef.h>
#include "s2s/s2s_server.h"

typedef struct s2s_metrics s2s_metrics;

/* NULL with the reason in err when the port cannot be had. */
s2s_metrics *s2s_metrics_open(s2s_server *srv, const char *ip, int port, char *err,
                              size_t errlen);
void s2s_metrics_close(s2s_metrics *m);

#endif
