/* shard/dup_filter.c — recently delivered stanzas (see dup_filter.h). */
#include "shard/dup_filter.h"

#include <string.h>

#include "core/random.h"
#include "core/siphash.h"

void dup_filter_init(dup_filter *f)
{
    memset(f, 0, sizeof *f);
    f->k0 = random_u64();
    f->k1 = random_u64();
}

uint64_t dup_filter_digest(const dup_filter *f, uint64_t sid, const void *stanza, size_t len)
{
    uint64_t d = siphash24(f->k0 ^ sid, f->k1, stanza, len);
    return d ? d : 1;   /* 0 marks an empty slot */
}

static bool in_table(const uint64_t *t, uint64_t d)
{
    for (size_t i = d & (DUP_FILTER_SLOTS - 1);; i = (i + 1) & (DUP_FILTER_SLOTS - 1)) {
        if (t[i] == d)
            return true;
        if (!t[i])
            return false;
    }
}

void dup_filter_add(dup_filter *f, uint64_t d)
{
    if (f->used[f->cur] >= DUP_FILTER_SLOTS / 2) {
        f->cur ^= 1;
        memset(f->slot[f->cur], 0, sizeof f->slot[f->cur]);
        f->used[f->cur] = 0;
    }
    uint64_t *t = f->slot[f->cur];
    size_t i = d & (DUP_FILTER_SLOTS - 1);
    while (t[i] && t[i] != d)
        i = (i + 1) & (DUP_FILTER_SLOTS - 1);
    if (!t[i]) {
        t[i] = d;
        f->used[f->cur]++;
    }
}

void dup_filter_new_link(dup_filter *f)
{
    memcpy(f->before, f->slot, sizeof f->before);
    memset(f->slot, 0, sizeof f->slot);
    f->used[0] = f->used[1] = 0;
}

bool dup_filter_seen_before(const dup_filter *f, uint64_t d)
{
    return in_table(f->before[0], d) || in_table(f->before[1], d);
}
