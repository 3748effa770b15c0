/* fuzz/fuzz_jid.c — jid_parse on arbitrary bytes. Whatever it accepts must be within the limits,
 * reparse to the same JID (normalisation is idempotent), rebuild from its parts with jid_make,
 * and survive the value operations (copy, bare, set_resource) unchanged. */
#include "core/jid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_jid_same(const jid *a, const jid *b)
{
    if (!jid_equal_full(a, b) || strcmp(jid_full(a), jid_full(b)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jid j, again, made, copy, bare;
    size_t node_len, domain_len, resource_len;

    if (jid_parse((const char *)data, size, &j) != JID_OK) {
        if (j.domain_len != 0 || jid_full(&j)[0] != '\0')
            abort();
        return 0;
    }
    const char *node = jid_node(&j, &node_len);
    const char *domain = jid_domain(&j, &domain_len);
    const char *resource = jid_resource(&j, &resource_len);
    size_t len = jid_full_len(&j);
    if (node_len > JID_PART_MAX || domain_len == 0 || domain_len > JID_PART_MAX ||
        resource_len > JID_PART_MAX || len > JID_MAX_LEN || strlen(jid_full(&j)) != len)
        abort();

    if (jid_parse(jid_full(&j), len, &again) != JID_OK)
        abort();
    fuzz_jid_same(&j, &again);

    if (jid_make(node, node_len, domain, domain_len, resource, resource_len, &made) != JID_OK)
        abort();
    fuzz_jid_same(&j, &made);

    jid_copy(&copy, &j);
    fuzz_jid_same(&j, &copy);
    jid_bare(&j, &bare);
    if (!jid_equal_bare(&j, &bare) || !jid_is_bare(&bare) ||
        jid_full_len(&bare) != jid_bare_len(&j))
        abort();
    if (resource) {
        if (jid_set_resource(&bare, resource, resource_len) != JID_OK)
            abort();
        fuzz_jid_same(&j, &bare);
    }

    char buf[JID_MAX_LEN + 1];
    if (jid_to_string(&j, buf, sizeof buf) != len || strcmp(buf, jid_full(&j)) != 0)
        abort();

    jid_free(&j);
    jid_free(&again);
    jid_free(&made);
    jid_free(&copy);
    jid_free(&bare);
    return 0;
}
