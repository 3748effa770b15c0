/* tests/unit/test_sm_map.c — sm/map: random puts, replaces and deletes against a plain reference
 * array, for plain maps (key copies) and keyed maps (values holding their keys); lookups, deletes
 * and re-puts while a grown table is still moving over; the move ending within a bounded number
 * of operations; each and values seeing every entry once in both tables; free and reuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sm/map.h"
#include "tests/support/xorshift.h"

#define NKEYS 5000

typedef struct item {
    char key[24];
    size_t len;
    int seen;
} item;

static item items[NKEYS];

static void items_init(void)
{
    for (int i = 0; i < NKEYS; i++) {
        items[i].len = (size_t)snprintf(items[i].key, sizeof(items[i].key), "u%d@example.org", i);
        items[i].seen = 0;
    }
}

static bool item_has_key(const void *val, const void *key, size_t len)
{
    const item *it = val;
    return it->len == len && memcmp(it->key, key, len) == 0;
}

/* A small deterministic generator (the test repeats exactly). */
static xorshift rng_gen = {0x9e3779b97f4a7c15ull};
static uint64_t rng(void) { return xorshift_next(&rng_gen); }

static void check_all(const sm_map *m, item *const *ref)
{
    size_t n = 0;
    for (int i = 0; i < NKEYS; i++) {
        assert_ptr_equal(sm_map_get(m, items[i].key, items[i].len), ref[i]);
        n += ref[i] != NULL;
    }
    assert_int_equal(sm_map_count(m), n);
}

static void random_ops(sm_map *m, bool keyed)
{
    items_init();
    item *ref[NKEYS] = {0};
    for (int round = 0; round < 200000; round++) {
        int i = (int)(rng() % NKEYS);
        uint64_t op = rng() % 10;
        if (op < 6) {
            /* A keyed map's value holds its own key; a plain map may map a key to any value. */
            item *val = keyed ? &items[i] : &items[rng() % NKEYS];
            sm_map_put(m, items[i].key, items[i].len, val);
            ref[i] = val;
        } else {
            assert_ptr_equal(sm_map_del(m, items[i].key, items[i].len), ref[i]);
            ref[i] = NULL;
        }
        if (round % 20000 == 0)
            check_all(m, ref);
    }
    check_all(m, ref);
    assert_null(sm_map_get(m, "absent", 6));
    assert_null(sm_map_del(m, "absent", 6));
}

static void test_random_plain(void **state)
{
    sm_map m;
    sm_map_init(&m);
    random_ops(&m, false);
    sm_map_free(&m);
}

static void test_random_keyed(void **state)
{
    sm_map m;
    sm_map_init_keyed(&m, item_has_key);
    random_ops(&m, true);
    sm_map_free(&m);
}

static void count_seen(void *val, void *ctx)
{
    ((item *)val)->seen++;
    (*(size_t *)ctx)++;
}

static void test_growth_moves_incrementally(void **state)
{
    items_init();
    sm_map m;
    sm_map_init_keyed(&m, item_has_key);
    int n = 0;
    /* Fill until a growth starts. */
    while (!m.old) {
        sm_map_put(&m, items[n].key, items[n].len, &items[n]);
        n++;
    }
    size_t old_cap = m.old_cap;
    assert_true(m.cap == 2 * old_cap);
    /* Both tables are searched while the move goes on; every entry is seen once. */
    for (int i = 0; i < n; i++)
        assert_ptr_equal(sm_map_get(&m, items[i].key, items[i].len), &items[i]);
    size_t visited = 0;
    sm_map_each(&m, count_seen, &visited);
    assert_int_equal(visited, (size_t)n);
    for (int i = 0; i < n; i++)
        assert_int_equal(items[i].seen, 1);
    void **vals = sm_map_values(&m);
    assert_non_null(vals);
    free(vals);
    /* A delete and a re-put of entries still in the old table. */
    assert_ptr_equal(sm_map_del(&m, items[n - 1].key, items[n - 1].len), &items[n - 1]);
    sm_map_put(&m, items[n - 2].key, items[n - 2].len, &items[n - 2]);
    assert_ptr_equal(sm_map_get(&m, items[n - 2].key, items[n - 2].len), &items[n - 2]);
    assert_null(sm_map_get(&m, items[n - 1].key, items[n - 1].len));
    /* The move ends within old_cap / 32 more operations (32 slots each), none a full rehash. */
    int ops = 0;
    while (m.old) {
        sm_map_put(&m, items[n].key, items[n].len, &items[n]);
        n++;
        ops++;
    }
    assert_true((size_t)ops <= old_cap / 32 + 1);
    assert_int_equal(sm_map_count(&m), (size_t)(n - 1));
    for (int i = 0; i < n; i++)
        assert_ptr_equal(sm_map_get(&m, items[i].key, items[i].len),
                         i == n - 1 - ops ? NULL : &items[i]);
    sm_map_free(&m);
}

static void test_free_and_reuse(void **state)
{
    items_init();
    sm_map m;
    sm_map_init(&m);
    assert_null(sm_map_get(&m, "x", 1));
    assert_null(sm_map_values(&m));
    for (int i = 0; i < 1000; i++)
        sm_map_put(&m, items[i].key, items[i].len, &items[i]);
    sm_map_free(&m);
    assert_int_equal(sm_map_count(&m), 0);
    assert_null(sm_map_get(&m, items[3].key, items[3].len));
    sm_map_put(&m, items[3].key, items[3].len, &items[3]);
    assert_ptr_equal(sm_map_get(&m, items[3].key, items[3].len), &items[3]);
    sm_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_plain),
        cmocka_unit_test(test_random_keyed),
        cmocka_unit_test(test_growth_moves_incrementally),
        cmocka_unit_test(test_free_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
