/* core/bytes.h — small binary records: big-endian integers and NUL-terminated UTF-8 strings
 * appended to a buf, and a bounds-checked reader over such bytes.
 *
 * The reader's `ok` turns false at the first read past the end or of a field out of its bounds,
 * and stays false (every later read returns 0 or NULL); a decoder checks it once at the end,
 * together with bytes_done(). Used by the codecs of what crosses a trust boundary (the smacks
 * messages of smproto, records read back from storage).
 *
 * Thread rules: none.
 */
#ifndef JABSHARD_CORE_BYTES_H
#define JABSHARD_CORE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

void bytes_put_u8(buf *out, uint8_t v);
void bytes_put_u32(buf *out, uint32_t v);
void bytes_put_u64(buf *out, uint64_t v);
/* The string and its NUL (NULL is written as ""). */
void bytes_put_str(buf *out, const char *s);
/* A u32 length, then len bytes. */
void bytes_put_blob(buf *out, const void *p, size_t len);

typedef struct bytes_reader {
    const uint8_t *p, *end;
    bool ok;
} bytes_reader;

bytes_reader bytes_reader_of(const void *data, size_t len);
uint8_t bytes_get_u8(bytes_reader *r);
uint32_t bytes_get_u32(bytes_reader *r);
uint64_t bytes_get_u64(bytes_reader *r);
/* 0 or 1; anything else fails the read. */
bool bytes_get_bool(bytes_reader *r);
/* A NUL-terminated UTF-8 string of at most max bytes (pointing into the data), or NULL. */
const char *bytes_get_str(bytes_reader *r, size_t max);
/* A blob of at most max bytes (pointing into the data; *len its length), or NULL. */
const uint8_t *bytes_get_blob(bytes_reader *r, size_t max, size_t *len);
/* Every byte was read, and every read was good. */
bool bytes_done(const bytes_reader *r);

#endif
