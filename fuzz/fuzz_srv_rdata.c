/* fuzz/fuzz_srv_rdata.c — s2s_srv_rdata_parse on arbitrary bytes (SRV RDATA as a hostile DNS
 * server sends it). What it accepts must be a valid host name or ".", fit its buffer, and come
 * from a name that ends exactly at the end of the input. The input is also split into records for
 * s2s_srv_merge (first byte: how the two services answered), whose targets must be valid and
 * bounded. */
#include "s2s/resolve.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t fuzz_rnd_state = 1;

static uint32_t fuzz_rnd(void)
{
    fuzz_rnd_state = fuzz_rnd_state * 1103515245u + 12345u;
    return fuzz_rnd_state;
}

static void fuzz_check_record(const uint8_t *data, size_t size)
{
    s2s_srv_record r;
    if (s2s_srv_rdata_parse(data, size, &r) != 0)
        return;
    size_t len = strnlen(r.target, sizeof(r.target));
    if (len == sizeof(r.target) || size < 7)
        abort();
    if (strcmp(r.target, ".") != 0 && !s2s_host_valid(r.target))
        abort();
    /* The wire name is one length byte per label plus the root: size == 6 + len + 2 ("." : 1). */
    if (strcmp(r.target, ".") == 0 ? size != 7 : size != 6 + len + 2)
        abort();
    if (r.priority != (data[0] << 8 | data[1]) || r.port != (data[4] << 8 | data[5]))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_record(data, size);
    if (size < 1)
        return 0;

    /* Records separated by a length byte, for the merge. */
    const uint8_t *rdata[2][16];
    size_t lens[2][16];
    s2s_srv_answer ans[2] = {
        { .kind = (s2s_srv_answer_kind)(data[0] % 3), .rdata = rdata[0], .len = lens[0] },
        { .kind = (s2s_srv_answer_kind)(data[0] / 3 % 3), .rdata = rdata[1], .len = lens[1] },
    };
    size_t pos = 1;
    for (int svc = 0; svc < 2; svc++) {
        while (pos < size && ans[svc].count < 16) {
            size_t l = data[pos++];
            if (l > size - pos)
                l = size - pos;
            rdata[svc][ans[svc].count] = data + pos;
            lens[svc][ans[svc].count++] = l;
            pos += l;
            if (l == 0)
                break;
        }
    }
    s2s_target t[S2S_TARGETS_MAX];
    size_t n = 99;
    int st = s2s_srv_merge(&ans[0], &ans[1], "fuzz.example", fuzz_rnd, t, S2S_TARGETS_MAX, &n);
    if (st == S2S_RESOLVE_OK ? (n == 0 || n > S2S_TARGETS_MAX) : n != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!s2s_host_valid(t[i].host))
            abort();
    return 0;
}
