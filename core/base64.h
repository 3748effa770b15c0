/* core/base64.h — base64 (RFC 4648 §4) as XMPP carries it in SASL exchanges: strict decoding
 * (padding required, no whitespace, no other alphabet) and encoding appended to a buffer.
 *
 * Thread rules: none; plain functions.
 */
#ifndef JABSHARD_CORE_BASE64_H
#define JABSHARD_CORE_BASE64_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

/* Decodes the NUL-terminated text into *out (malloc'd, one spare byte, to be freed by the
 * caller); returns the decoded length, or -1 (and *out NULL) for anything not strict base64. */
long base64_decode(const char *text, uint8_t **out);

/* Appends the base64 of len bytes of data to out. */
void base64_append(buf *out, const void *data, size_t len);

#endif
