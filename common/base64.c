/* base64.c - standard-alphabet base64, padded or not, strict decoding. Line wrapping (age's
 * 64-column stanza bodies) is the caller's. */
#include "base64.h"

static const char base64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t base64_encode(const uint8_t *in, size_t n, char *out, bool pad)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = base64_chars[v >> 18];
        out[o++] = base64_chars[(v >> 12) & 63];
        out[o++] = base64_chars[(v >> 6) & 63];
        out[o++] = base64_chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = base64_chars[v >> 18];
        out[o++] = base64_chars[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = base64_chars[v >> 18];
        out[o++] = base64_chars[(v >> 12) & 63];
        out[o++] = base64_chars[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    return o;
}

long base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, bool padded)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (in == NULL && n > 0)
        return -1;
    if (padded) {
        if (n % 4 != 0)
            return -1;
        for (int k = 0; k < 2 && n > 0 && in[n - 1] == '='; k++)
            n--;
    }
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = base64_value((uint8_t)in[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out != NULL) {
                if (o >= cap)
                    return -1;
                out[o] = (uint8_t)(acc >> bits);
            }
            o++;
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}
