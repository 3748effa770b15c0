/* core/buf.c — the growable byte buffer behind core/buf.h, and its compaction policy. */
#include "core/buf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define BUF_MIN_CAP 256

void buf_init(buf *b)
{
    *b = (buf)BUF_INIT;
}

void buf_free(buf *b)
{
    free(b->mem);
    buf_init(b);
}

void buf_compact(buf *b)
{
    if (b->start == 0)
        return;
    size_t len = buf_len(b);
    memmove(b->mem, b->mem + b->start, len);
    b->start = 0;
    b->end = len;
}

char *buf_reserve(buf *b, size_t n)
{
    if (b->mem && buf_avail(b) >= n)
        return b->mem + b->end;
    size_t len = buf_len(b), need;
    if (__builtin_add_overflow(len, n, &need))
        abort();
    /* Compacting moves len bytes; it pays for itself only when at least as many were consumed
     * since the last move (start >= len). Otherwise grow, so a reader consuming a little at a
     * time from a nearly full buffer does not move the whole remainder on every read. */
    if (b->mem && need <= b->cap && b->start >= len) {
        buf_compact(b);
        return b->mem + b->end;
    }
    /* At least double: the bytes appended before the next move then pay for it. */
    if (b->cap > SIZE_MAX / 2)
        abort();
    size_t cap = b->cap * 2;
    if (cap < need)
        cap = need;
    if (cap < BUF_MIN_CAP)
        cap = BUF_MIN_CAP;
    if (b->start == 0) {
        b->mem = mem_realloc(b->mem, cap);
    } else {
        /* Copy only the live bytes into the new allocation. */
        char *mem = mem_alloc(cap);
        memcpy(mem, b->mem + b->start, len);
        free(b->mem);
        b->mem = mem;
        b->start = 0;
        b->end = len;
    }
    b->cap = cap;
    return b->mem + b->end;
}

void buf_commit(buf *b, size_t n)
{
    assert(n <= buf_avail(b));
    b->end += n;
}

void buf_append(buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), data, n);
    b->end += n;
}

void buf_appendf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* First try into whatever room there is (at least a small line's worth), then exactly. */
    char *dst = buf_reserve(b, 128);
    int n = vsnprintf(dst, buf_avail(b), fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if ((size_t)n >= buf_avail(b)) {
        dst = buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(dst, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->end += (size_t)n;
}

void buf_consume(buf *b, size_t n)
{
    assert(n <= buf_len(b));
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

void buf_truncate(buf *b, size_t len)
{
    assert(len <= buf_len(b));
    b->end = b->start + len;
    if (b->start == b->end)
        b->start = b->end = 0;
}

char *buf_detach(buf *b, size_t *start, size_t *len)
{
    char *mem = b->mem;
    *start = b->start;
    *len = buf_len(b);
    buf_init(b);
    return mem;
}
