/* sm/strset.c — sets of strings on sm_map (see strset.h). Each entry's value is its own copy of
 * the string, which is what the members are read from. */
#include "sm/strset.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sm/map.h"

struct sm_strset {
    sm_map map;
};

bool sm_strset_add(sm_strset **set, const char *s)
{
    if (!*set) {
        *set = mem_alloc(sizeof **set);
        sm_map_init(&(*set)->map);
    }
    size_t len = strlen(s);
    if (sm_map_get(&(*set)->map, s, len))
        return false;
    sm_map_put(&(*set)->map, s, len, mem_strdup(s));
    return true;
}

bool sm_strset_remove(sm_strset **set, const char *s)
{
    if (!*set)
        return false;
    char *copy = sm_map_del(&(*set)->map, s, strlen(s));
    if (!copy)
        return false;
    free(copy);
    if (!sm_map_count(&(*set)->map))
        sm_strset_free(set);
    return true;
}

bool sm_strset_has(const sm_strset *set, const char *s)
{
    return set && sm_map_get(&set->map, s, strlen(s));
}

size_t sm_strset_count(const sm_strset *set)
{
    return set ? sm_map_count(&set->map) : 0;
}

const char **sm_strset_members(const sm_strset *set)
{
    return set ? (const char **)sm_map_values(&set->map) : NULL;
}

static void free_value(void *val, void *ctx)
{
    free(val);
}

void sm_strset_free(sm_strset **set)
{
    if (!*set)
        return;
    sm_map_each(&(*set)->map, free_value, NULL);
    sm_map_free(&(*set)->map);
    free(*set);
    *set = NULL;
}
