/* core/utf8.c — UTF-8 validation and cutting (core/utf8.h). */
#include "core/utf8.h"

int utf8_scan(const void *str, size_t len)
{
    const unsigned char *s = str;
    int ascii = 1;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        ascii = 0;
        size_t extra;
        if (c >= 0xc2 && c <= 0xdf)
            extra = 1;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3;
        else
            return -1;
        if (len - i <= extra)
            return -1;
        for (size_t k = 1; k <= extra; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
        /* The second byte's range rules out overlong forms, surrogates and > U+10FFFF. */
        unsigned char c1 = s[i + 1];
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) ||
            (c == 0xf4 && c1 >= 0x90))
            return -1;
        i += extra + 1;
    }
    return ascii;
}

size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    /* Back off continuation bytes (10xxxxxx): the cut then falls before a character's start. */
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}
