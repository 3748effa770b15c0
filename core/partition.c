/* core/partition.c — a user's slot and its SM (see partition.h). */
#include "core/partition.h"

#include "core/siphash.h"

/* The ASCII of "jabshard" and "-partn01" as two words: any fixed value would do. */
const partition_key partition_default_key = {0x6a61627368617264ull, 0x2d706172746e3031ull};

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool partition_key_parse(const char *hex, partition_key *key)
{
    uint64_t w[2] = {0, 0};
    for (int i = 0; i < 32; i++) {
        int v = hex ? hexval(hex[i]) : -1;
        if (v < 0)
            return false;
        w[i / 16] = w[i / 16] << 4 | (uint64_t)v;
    }
    if (hex[32])
        return false;
    key->k0 = w[0];
    key->k1 = w[1];
    return true;
}

unsigned partition_slot_of(const partition_key *key, const char *bare, size_t len)
{
    /* The top 12 bits: SipHash's output bits are all equally good. */
    return (unsigned)(siphash24(key->k0, key->k1, bare, len) >> 52);
}

unsigned partition_slot(const partition_key *key, const jid *j)
{
    return partition_slot_of(key, jid_full(j), jid_bare_len(j));
}

int partition_owner(unsigned slot, int nsms)
{
    if (nsms <= 1)
        return 0;
    /* The inverse of the range bounds: the largest i with i * SLOTS / nsms <= slot. */
    int i = (int)(((uint64_t)slot * (unsigned)nsms) / PARTITION_SLOTS);
    while (i + 1 < nsms && (uint64_t)(i + 1) * PARTITION_SLOTS / (unsigned)nsms <= slot)
        i++;
    while (i > 0 && (uint64_t)i * PARTITION_SLOTS / (unsigned)nsms > slot)
        i--;
    return i;
}
