/* sm/peer_route.c — the core's side of <partitions> (docs/scaling.md, "Past one SM"): which users
 * are this SM's, which link reaches the SM owning another's, and what a peer SM may send. The
 * router (route.c) sends a stanza to a user of another partition over that link; everything else
 * a stanza does there (offline storage, presence, subscriptions, carbons, MAM) is the owning SM's,
 * as between two servers (RFC 6121). Without <partitions> every local user is this SM's and no
 * function here changes anything. */
#include "core/log.h"
#include "core/partition.h"
#include "sm/core.h"

/* The table index of the SM owning local user j's partition. */
static int owner_of(const sm *s, const jid *j)
{
    const sm_partitions *p = &s->cfg->partitions;
    return partition_owner(partition_slot(&p->key, j), p->count);
}

bool smc_partition_other(const sm *s, const jid *j, int *owner)
{
    if (!s->cfg->partitions.npeers)
        return false;
    *owner = owner_of(s, j);
    return *owner != s->cfg->partitions.index;
}

bool sm_is_own_user(const sm *s, const jid *j)
{
    int owner;
    return sm_is_local_user(s, j) && !smc_partition_other(s, j, &owner);
}

sm_link *smc_peer_link(const sm *s, int index)
{
    for (sm_link *l = s->links; l; l = l->next)
        if (l->peer == index + 1)
            return l;
    return NULL;
}

/* Whether a peer SM with table index `index` may send as j: one of its users, or a served host
 * itself (the peer's own answers and errors, as the domain). */
static bool peer_may_send_as(const sm *s, const jid *j, int index)
{
    size_t dlen, nlen;
    const char *d = jid_domain(j, &dlen);
    if (!d || !sm_is_local_host(s, d, dlen))
        return false;
    return !jid_node(j, &nlen) || owner_of(s, j) == index;
}

void smc_peer_stanza(sm *s, sm_link *l, sm_stanza *st)
{
    if (!st) {
        s->stats.peer_refused++;
        return;
    }
    const char *name = st->node->name;
    bool kind = streq(name, "message") || streq(name, "presence") || streq(name, "iq");
    if (!kind || st->bad_to || !st->from.domain_len || !st->to.domain_len ||
        !peer_may_send_as(s, &st->from, l->peer - 1) || !sm_is_own_user(s, &st->to)) {
        log_warn("sm: peer SM '%s' sent a <%s/> from '%s' to '%s': refused (from must be a user "
                 "of its partitions, to one of ours)", l->service, name, jid_full(&st->from),
                 st->bad_to ? "?" : jid_full(&st->to));
        s->stats.peer_refused++;
        sm_stanza_free(st);
        return;
    }
    s->stats.peer_in++;
    sm_route(s, st);
}
