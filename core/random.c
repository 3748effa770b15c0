/* core/random.c — the OS CSPRNG behind core/random.h. */
#include "core/random.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

void random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("jabshard: getrandom");
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

uint64_t random_u64(void)
{
    uint64_t v;
    random_bytes(&v, sizeof(v));
    return v;
}

void random_token(char *out, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[64];
    size_t done = 0;
    while (done < len) {
        random_bytes(raw, sizeof(raw));
        /* 62 symbols: reject 248..255 so every symbol is equally likely. */
        for (size_t i = 0; i < sizeof(raw) && done < len; i++)
            if (raw[i] < 248)
                out[done++] = alphabet[raw[i] % 62];
    }
    out[len] = '\0';
}
