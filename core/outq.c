/* core/outq.c — reference-counted output blocks and the per-connection queue that writes them
 * (see core/outq.h for the contract). */
#include "core/outq.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/mem.h"

/* Room in a fresh tail block: enough for a stream header and features in one entry, small enough
 * not to matter per connection (tail blocks are freed once written). */
#define OUTQ_TAIL_SIZE 4096
#define OUTQ_MIN_ENTRIES 8

struct outq_block {
    atomic_size_t refs;     /* any thread */
    size_t len;             /* fixed once shared; only a queue's private tail block grows */
    size_t cap;             /* room at data (meaningful for tail blocks) */
    char *data;
    void (*release)(void *ctx, const void *data);  /* NULL when data is inline */
    void *ctx;
    char inline_data[];
};

struct outq_entry {
    outq_block *blk;
    size_t off, len;        /* the unwritten part: advances as the writer accepts bytes */
};

outq_block *outq_block_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(outq_block))
        abort();
    outq_block *blk = mem_alloc(sizeof *blk + len);
    atomic_init(&blk->refs, 1);
    blk->len = blk->cap = len;
    blk->data = blk->inline_data;
    blk->release = NULL;
    blk->ctx = NULL;
    return blk;
}

outq_block *outq_block_copy(const void *data, size_t len)
{
    outq_block *blk = outq_block_new(len);
    if (len)
        memcpy(blk->data, data, len);
    return blk;
}

outq_block *outq_block_wrap(const void *data, size_t len,
                            void (*release)(void *ctx, const void *data), void *ctx)
{
    outq_block *blk = mem_alloc(sizeof *blk);
    atomic_init(&blk->refs, 1);
    blk->len = blk->cap = len;
    blk->data = (char *)data;   /* never written through: wrapped blocks are never tail blocks */
    blk->release = release;
    blk->ctx = ctx;
    return blk;
}

static void outq_release_buf(void *ctx, const void *data)
{
    free(ctx);
}

outq_block *outq_block_from_buf(buf *b)
{
    size_t start, len;
    char *mem = buf_detach(b, &start, &len);
    if (!mem)
        return outq_block_new(0);
    return outq_block_wrap(mem + start, len, outq_release_buf, mem);
}

char *outq_block_data(outq_block *blk)
{
    return blk->data;
}

size_t outq_block_len(const outq_block *blk)
{
    return blk->len;
}

outq_block *outq_block_ref(outq_block *blk)
{
    atomic_fetch_add_explicit(&blk->refs, 1, memory_order_relaxed);
    return blk;
}

void outq_block_unref(outq_block *blk)
{
    /* acq_rel: every holder's reads of the bytes happen before the last holder frees them. */
    if (!blk || atomic_fetch_sub_explicit(&blk->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (blk->release)
        blk->release(blk->ctx, blk->data);
    free(blk);
}

void outq_init(outq *q)
{
    *q = (outq)OUTQ_INIT;
}

static inline struct outq_entry *entry_at(const outq *q, uint32_t k)
{
    return &q->ring[(q->head + k) & (q->cap - 1)];
}

/* Pops the head entry, releasing its reference. An idle connection keeps no queue memory: the ring
 * goes with the last entry. */
static void pop_head(outq *q)
{
    struct outq_entry *e = entry_at(q, 0);
    if (e->blk == q->tail)
        q->tail = NULL;
    outq_block_unref(e->blk);
    q->head = (q->head + 1) & (q->cap - 1);
    if (--q->count == 0) {
        free(q->ring);
        q->ring = NULL;
        q->head = q->cap = 0;
    }
}

void outq_free(outq *q)
{
    while (q->count > 0)
        pop_head(q);
    outq_init(q);
}

static void push_entry(outq *q, outq_block *blk, size_t off, size_t len)
{
    if (q->count == q->cap) {
        if (q->cap > UINT32_MAX / 2)
            abort();
        uint32_t cap = q->cap ? q->cap * 2 : OUTQ_MIN_ENTRIES;
        struct outq_entry *ring = mem_array(cap, sizeof *ring);
        for (uint32_t k = 0; k < q->count; k++)
            ring[k] = *entry_at(q, k);
        free(q->ring);
        q->ring = ring;
        q->head = 0;
        q->cap = cap;
    }
    q->ring[(q->head + q->count) & (q->cap - 1)] = (struct outq_entry){ blk, off, len };
    q->count++;
    q->bytes += len;
}

void outq_push_block(outq *q, outq_block *blk, size_t off, size_t len)
{
    assert(off <= blk->len && len <= blk->len - off);
    if (len == 0)
        return;
    push_entry(q, outq_block_ref(blk), off, len);
    /* The tail block is no longer the last entry: a later copy starts a new one. */
    q->tail = NULL;
}

void outq_push_bytes(outq *q, const void *data, size_t len)
{
    if (len == 0)
        return;
    outq_block *t = q->tail;
    if (t && t->cap - t->len >= len) {
        /* The tail block is the last entry and its entry ends at t->len. */
        memcpy(t->data + t->len, data, len);
        t->len += len;
        entry_at(q, q->count - 1)->len += len;
        q->bytes += len;
        return;
    }
    t = outq_block_new(len > OUTQ_TAIL_SIZE ? len : OUTQ_TAIL_SIZE);
    memcpy(t->data, data, len);
    t->len = len;
    push_entry(q, t, 0, len);
    q->tail = t;
}

void outq_truncate(outq *q, size_t keep)
{
    while (q->count > 0 && q->bytes > keep) {
        struct outq_entry *e = entry_at(q, q->count - 1);
        /* A shortened tail block's entry no longer ends at its len: stop coalescing into it. */
        if (e->blk == q->tail)
            q->tail = NULL;
        size_t excess = q->bytes - keep;
        if (excess < e->len) {
            e->len -= excess;
            q->bytes = keep;
            return;
        }
        q->bytes -= e->len;
        outq_block_unref(e->blk);
        q->count--;
    }
    if (q->count == 0) {
        free(q->ring);
        outq_init(q);
    }
}

/* Drops n written bytes from the front of the queue. */
static void advance(outq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0) {
        struct outq_entry *e = entry_at(q, 0);
        if (n < e->len) {
            e->off += n;
            e->len -= n;
            return;
        }
        n -= e->len;
        pop_head(q);
    }
}

outq_status outq_flush(outq *q, outq_write_fn writer, void *ctx, int max_iov)
{
    struct iovec iov[IOV_MAX];
    if (max_iov < 1)
        max_iov = 1;
    if (max_iov > IOV_MAX)
        max_iov = IOV_MAX;
    while (q->count > 0) {
        int n = q->count < (uint32_t)max_iov ? (int)q->count : max_iov;
        size_t total = 0;
        for (int k = 0; k < n; k++) {
            const struct outq_entry *e = entry_at(q, (uint32_t)k);
            iov[k] = (struct iovec){ .iov_base = e->blk->data + e->off, .iov_len = e->len };
            total += e->len;
        }
        ssize_t w = writer(ctx, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? OUTQ_BLOCKED : OUTQ_ERROR;
        }
        if (w == 0) {
            errno = EIO;
            return OUTQ_ERROR;
        }
        assert((size_t)w <= total);
        advance(q, (size_t)w);
    }
    return OUTQ_EMPTY;
}

static ssize_t outq_sendmsg(void *ctx, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    return sendmsg((int)(intptr_t)ctx, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

outq_status outq_flush_socket(outq *q, int fd)
{
    return outq_flush(q, outq_sendmsg, (void *)(intptr_t)fd, IOV_MAX);
}
