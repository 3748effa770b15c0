/* core/outq.h — a connection's output queue: shared stanza blocks written with writev.
 *
 * A stanza is serialized once into an outq_block: immutable bytes with an atomic reference count.
 * Queuing it on a connection takes a reference instead of a copy, so one presence broadcast to many
 * connections, on many IO threads, costs one serialization and no copies. A queue entry may cover
 * part of a block (a frame inside a larger read from the SM link).
 *
 * Small writes that are not blocks (a stream header, a whitespace keepalive) are copied into a
 * queue-private tail block and coalesced with the writes around them, to keep iovec counts low.
 *
 * outq_flush writes as much as the writer accepts, up to IOV_MAX entries per call, through a
 * pluggable writer: sendmsg on a plain socket, or a TLS writer (which may ask for one entry per
 * call). The queue counts its unwritten bytes so the owner can enforce a bound.
 *
 * Thread rules: a block may be referenced, read and released from any thread once it is shared; its
 * bytes must not change after it is first queued or handed to another thread. An outq belongs to one
 * thread (its connection's IO thread).
 */
#ifndef JABSHARD_CORE_OUTQ_H
#define JABSHARD_CORE_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"

typedef struct outq_block outq_block;

/* Every constructor returns a block holding one reference, the caller's.
 * outq_block_new: len bytes, uninitialized; fill them through outq_block_data before sharing. */
outq_block *outq_block_new(size_t len);
outq_block *outq_block_copy(const void *data, size_t len);
/* Takes b's bytes without copying them (a serializer's output); b is left empty. */
outq_block *outq_block_from_buf(buf *b);
/* Wraps memory the block does not own; release(ctx, data) runs once, when the last reference goes,
 * on whichever thread drops it. */
outq_block *outq_block_wrap(const void *data, size_t len,
                            void (*release)(void *ctx, const void *data), void *ctx);

char *outq_block_data(outq_block *blk);
size_t outq_block_len(const outq_block *blk);
outq_block *outq_block_ref(outq_block *blk);   /* returns blk */
void outq_block_unref(outq_block *blk);        /* NULL is ignored */

struct outq_entry;
typedef struct outq {
    struct outq_entry *ring;  /* private: entries, a circular array of cap (a power of two) */
    uint32_t head, count, cap;
    size_t bytes;             /* unwritten bytes queued */
    outq_block *tail;         /* private coalescing block, always the last entry's, or NULL */
} outq;

#define OUTQ_INIT { 0 }

void outq_init(outq *q);
/* Drops every entry, releasing the queue's references; q is empty and may be used again. */
void outq_free(outq *q);

/* Queues bytes [off, off + len) of blk, taking a reference of its own (the caller keeps its own).
 * Empty ranges are ignored. */
void outq_push_block(outq *q, outq_block *blk, size_t off, size_t len);
/* Queues a copy of data, appended to the tail block when it fits. */
void outq_push_bytes(outq *q, const void *data, size_t len);

/* Keeps the first keep unwritten bytes and drops the rest (nothing when keep >= outq_bytes): a
 * connection that ends early takes back what no byte of has been written. A cut inside an entry
 * shortens it. */
void outq_truncate(outq *q, size_t keep);

static inline size_t outq_bytes(const outq *q) { return q->bytes; }
static inline bool outq_empty(const outq *q) { return q->count == 0; }

/* A writer writes a prefix of the iovecs (possibly ending inside one) and returns its length, which
 * must be > 0; or returns -1 with errno: EAGAIN/EWOULDBLOCK when it cannot write now (the owner waits
 * for writability, or for readability when TLS needs to read first), EINTR to be called again, any
 * other errno for a dead connection. */
typedef ssize_t (*outq_write_fn)(void *ctx, const struct iovec *iov, int iovcnt);

typedef enum {
    OUTQ_EMPTY,     /* everything was written */
    OUTQ_BLOCKED,   /* the writer would block; bytes remain */
    OUTQ_ERROR,     /* the writer failed; errno says why (a writer returning 0 reports EIO) */
} outq_status;

/* Writes until the queue is empty or the writer blocks or fails. max_iov (clamped to 1..IOV_MAX)
 * is how many entries the writer is offered per call: IOV_MAX for a socket, 1 for a writer that
 * writes entry by entry. */
outq_status outq_flush(outq *q, outq_write_fn writer, void *ctx, int max_iov);
/* outq_flush with sendmsg(MSG_NOSIGNAL) on a non-blocking socket (writev semantics without SIGPIPE
 * when the peer has gone). */
outq_status outq_flush_socket(outq *q, int fd);

#endif
