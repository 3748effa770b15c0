/* tests/bench/loadgen/lg_fed.c — who is on which server in federation mode (see lg_fed.h). */
#include "tests/bench/loadgen/lg_fed.h"

uint32_t lg_fed_senders(const lg_options *o)
{
    return lg_fed_on(o) ? o->users / 2 : o->users;
}

bool lg_fed_on_peer(const lg_options *o, uint32_t index)
{
    return lg_fed_on(o) && index >= o->users / 2;
}

const char *lg_fed_domain(const lg_options *o, uint32_t index)
{
    return lg_fed_on_peer(o, index) ? o->peer_domain : o->domain;
}

uint32_t lg_fed_slot(const lg_options *o, uint32_t index, uint32_t hop)
{
    if (!lg_fed_on(o))
        return index + hop;
    /* lg_options_parse puts the peer's address last, after at least one of the local server. */
    if (lg_fed_on_peer(o, index))
        return (uint32_t)(o->naddrs - 1);
    return (uint32_t)((index + hop) % (o->naddrs - 1));
}

uint32_t lg_fed_receiver(const lg_options *o, uint32_t sender)
{
    uint32_t half = lg_fed_senders(o);
    if (!lg_fed_on(o))
        return (sender + 1) % o->users;
    return half + (sender + 1) % half;
}
