/* core/utf8.h — UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), for every parser that must not pass unchecked bytes on (JIDs, link frames), and
 * cutting text without splitting a character. */
#ifndef JABSHARD_CORE_UTF8_H
#define JABSHARD_CORE_UTF8_H

#include <stddef.h>

/* 1 when s[0..len) is all ASCII, 0 when it is valid UTF-8 with non-ASCII characters, -1 when it
 * is not UTF-8. NUL bytes count as ASCII: callers that forbid them check separately. */
int utf8_scan(const void *s, size_t len);

/* The length of the longest prefix of s[0..len) (valid UTF-8) that is at most max bytes and ends
 * between characters: where text that must be shortened can be cut. */
size_t utf8_cut(const char *s, size_t len, size_t max);

#endif
