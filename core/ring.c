/* core/ring.c — setting up and tearing down SPSC rings (core/ring.h). */
#include "core/ring.h"

#include <stdlib.h>

#include "core/mem.h"

void ring_init(ring *r, unsigned size)
{
    r->slots = mem_array(size, sizeof(ck_ring_buffer_t));
    ck_ring_init(&r->ring, size);
}

void ring_destroy(ring *r)
{
    free(r->slots);
    r->slots = NULL;
}
