/* core/mem.h — allocation that never returns NULL.
 *
 * A server that runs out of memory mid-stanza cannot recover cleanly, and checking every small
 * allocation spreads untested error paths everywhere. These wrappers abort with a message
 * instead. Use them for everything that is not a bounded, attacker-sized request: those get
 * a limit check before allocating, never a failed malloc.
 */
#ifndef JABSHARD_CORE_MEM_H
#define JABSHARD_CORE_MEM_H

#include <stddef.h>

void *mem_alloc(size_t size);                     /* malloc that aborts on failure */
void *mem_zalloc(size_t size);                    /* calloc(1, size) that aborts on failure */
void *mem_realloc(void *p, size_t size);          /* realloc that aborts on failure */
void *mem_array(size_t count, size_t size);       /* zeroed array, overflow-checked */
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);

#endif
