/* tests/unit/test_partition.c — core/partition: the slot of a bare JID is fixed (a known value
 * under the built-in key, the same for every spelling the JID normalises to, its resource
 * ignored), spread evenly over the 4,096 slots; the slot ranges split over 1 to 64 SMs cover every
 * slot once, in order and within one slot of equal; a configured key is 32 hex digits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/partition.h"
#include "core/siphash.h"

static unsigned slot_of_text(const char *s)
{
    jid j;
    assert_int_equal(jid_parse(s, strlen(s), &j), JID_OK);
    unsigned slot = partition_slot(&partition_default_key, &j);
    jid_free(&j);
    return slot;
}

static void test_slot_is_fixed(void **state)
{
    (void)state;
    /* The same on every SM and front, in every process: computed from the key, not at random. */
    const char *bare = "juliet@capulet.example";
    uint64_t h = siphash24(partition_default_key.k0, partition_default_key.k1, bare, strlen(bare));
    assert_int_equal(slot_of_text(bare), (unsigned)(h >> 52));
    assert_int_equal(partition_slot_of(&partition_default_key, bare, strlen(bare)), h >> 52);
    /* Canonical form: case, the resource and a trailing dot do not move a user. */
    assert_int_equal(slot_of_text("Juliet@Capulet.Example"), slot_of_text(bare));
    assert_int_equal(slot_of_text("juliet@capulet.example/balcony"), slot_of_text(bare));
    assert_int_equal(slot_of_text("juliet@capulet.example."), slot_of_text(bare));
    assert_true(slot_of_text(bare) < PARTITION_SLOTS);
}

static void test_slots_spread(void **state)
{
    (void)state;
    static unsigned count[PARTITION_SLOTS];
    unsigned per_sm[2] = {0, 0};
    const int n = 409600;   /* 100 a slot on average */
    for (int i = 0; i < n; i++) {
        char b[64];
        int len = snprintf(b, sizeof b, "u%d@scale.example", i);
        unsigned s = partition_slot_of(&partition_default_key, b, (size_t)len);
        count[s]++;
        per_sm[partition_owner(s, 2)]++;
    }
    unsigned lo = n, hi = 0;
    for (unsigned s = 0; s < PARTITION_SLOTS; s++) {
        lo = count[s] < lo ? count[s] : lo;
        hi = count[s] > hi ? count[s] : hi;
    }
    /* Poisson(100): 4,096 draws stay well within 50..160. */
    assert_true(lo > 50 && hi < 160);
    assert_true(per_sm[0] > n / 2 - n / 100 && per_sm[0] < n / 2 + n / 100);
}

static void test_owner_ranges(void **state)
{
    (void)state;
    for (int nsms = 1; nsms <= PARTITION_MAX_SMS; nsms++) {
        unsigned owned[PARTITION_MAX_SMS] = {0};
        int last = 0;
        for (unsigned s = 0; s < PARTITION_SLOTS; s++) {
            int o = partition_owner(s, nsms);
            assert_true(o >= 0 && o < nsms);
            assert_true(o == last || o == last + 1);    /* ranges in order, none skipped */
            last = o;
            owned[o]++;
        }
        assert_int_equal(last, nsms - 1);
        for (int i = 0; i < nsms; i++) {
            unsigned even = PARTITION_SLOTS / (unsigned)nsms;
            assert_true(owned[i] == even || owned[i] == even + 1);
        }
    }
    assert_int_equal(partition_owner(0, 2), 0);
    assert_int_equal(partition_owner(2047, 2), 0);
    assert_int_equal(partition_owner(2048, 2), 1);
    assert_int_equal(partition_owner(4095, 2), 1);
}

static void test_key_parse(void **state)
{
    (void)state;
    partition_key k = {1, 2};
    assert_true(partition_key_parse("00112233445566778899aabbccddeeFF", &k));
    assert_true(k.k0 == 0x0011223344556677ull && k.k1 == 0x8899aabbccddeeffull);
    partition_key before = k;
    assert_false(partition_key_parse("00112233445566778899aabbccddeeff0", &k));
    assert_false(partition_key_parse("00112233445566778899aabbccddeef", &k));
    assert_false(partition_key_parse("00112233445566778899aabbccddeefg", &k));
    assert_false(partition_key_parse("", &k));
    assert_false(partition_key_parse(NULL, &k));
    assert_memory_equal(&k, &before, sizeof k);
    /* Another key moves users. */
    int moved = 0;
    for (int i = 0; i < 16; i++) {
        char u[32];
        int len = snprintf(u, sizeof u, "u%d@x.example", i);
        moved += partition_slot_of(&k, u, (size_t)len) !=
                 partition_slot_of(&partition_default_key, u, (size_t)len);
    }
    assert_true(moved > 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_is_fixed),
        cmocka_unit_test(test_slots_spread),
        cmocka_unit_test(test_owner_ranges),
        cmocka_unit_test(test_key_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
