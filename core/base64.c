/* core/base64.c — strict base64 decoding and encoding (see base64.h). */
#include "core/base64.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/mem.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long base64_decode(const char *text, uint8_t **out)
{
    size_t n = strlen(text);
    *out = NULL;
    if (n % 4)
        return -1;
    uint8_t *d = mem_alloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)text[i + k];
            if (c == '=' && i + 4 == n && k >= 2 && (k == 3 || text[i + 3] == '=')) {
                v[k] = 0;
                pad++;
            } else if ((v[k] = b64_value(c)) < 0 || pad) {
                free(d);
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        d[o++] = (uint8_t)(w >> 16);
        if (pad < 2)
            d[o++] = (uint8_t)(w >> 8);
        if (pad < 1)
            d[o++] = (uint8_t)w;
    }
    *out = d;
    return (long)o;
}

void base64_append(buf *out, const void *data, size_t len)
{
    size_t need = 4 * ((len + 2) / 3) + 1;
    char *p = buf_reserve(out, need);
    int n = EVP_EncodeBlock((unsigned char *)p, data, (int)len);
    buf_commit(out, (size_t)n);
}
