/* core/buf.h — a growable byte buffer: bytes are appended at the end and consumed from the front.
 *
 * Used for what a connection has read but not yet parsed, and for building output. Consuming only
 * advances an offset; the bytes are moved back to the start of the allocation only when that costs
 * no more than the bytes consumed since (or when the buffer must grow anyway), so a reader that eats
 * a little at a time never pays a memmove of the whole remainder.
 *
 * A zeroed buf (BUF_INIT or buf_init) is empty and owns no memory. Allocation failure aborts
 * (core/mem.h); callers that append attacker-controlled amounts check their own limit first.
 *
 * Thread rules: a buf belongs to one thread at a time.
 */
#ifndef JABSHARD_CORE_BUF_H
#define JABSHARD_CORE_BUF_H

#include <stddef.h>

typedef struct buf {
    char *mem;      /* the allocation, or NULL */
    size_t start;   /* first unconsumed byte */
    size_t end;     /* one past the last byte */
    size_t cap;     /* size of mem */
} buf;

#define BUF_INIT { 0 }

void buf_init(buf *b);
/* Releases the memory; b is empty and may be used again (an idle connection frees its buffers). */
void buf_free(buf *b);

/* The unconsumed bytes: buf_data(b)[0 .. buf_len(b)). The pointer is valid until the next call
 * that adds bytes. */
static inline char *buf_data(const buf *b) { return b->mem ? b->mem + b->start : NULL; }
static inline size_t buf_len(const buf *b) { return b->end - b->start; }
/* Bytes that may be written at buf_data(b) + buf_len(b) before the buffer must grow. */
static inline size_t buf_avail(const buf *b) { return b->cap - b->end; }

/* Ensures room for at least n more bytes after the data and returns where they go; write into it,
 * then buf_commit the count actually written. The typical read (two statements: C leaves the
 * order of a call's arguments open, so buf_avail must not sit beside buf_reserve in one call):
 *     char *room = buf_reserve(&b, 4096);
 *     ssize_t r = read(fd, room, buf_avail(&b));
 *     if (r > 0) buf_commit(&b, r);
 */
char *buf_reserve(buf *b, size_t n);
/* Adds n bytes written into the reserved space (n <= buf_avail(b)). */
void buf_commit(buf *b, size_t n);

void buf_append(buf *b, const void *data, size_t n);
void buf_appendf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops n bytes (n <= buf_len(b)) from the front. */
void buf_consume(buf *b, size_t n);
/* Drops the bytes after the first len (len <= buf_len(b)): a writer taking back what it appended. */
void buf_truncate(buf *b, size_t len);
/* Moves the data to the start of the allocation, making all free space contiguous at the end. */
void buf_compact(buf *b);

/* Hands the allocation to the caller (who frees it with free()); the data is at *start, *len bytes
 * long. b is left empty. Returns NULL (and *start = *len = 0) when b owns no memory. */
char *buf_detach(buf *b, size_t *start, size_t *len);

#endif
