/* hex.c - hexadecimal encode/decode (see hex.h). No allocation, no locale: the digits are
 * ASCII whatever the environment. */
#include "hex.h"

#include <errno.h>

const char hex_digits[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                             '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

void hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void hex_put_u64(char *out, uint64_t v, unsigned width)
{
    if (width > 16)
        width = 16;
    for (unsigned i = width; i > 0; i--) {
        out[i - 1] = hex_digits[v & 15];
        v >>= 4;
    }
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, size_t n_digits, uint8_t *out, size_t out_len)
{
    if (n_digits % 2 != 0 || n_digits / 2 > out_len)
        return -EINVAL;
    for (size_t i = 0; i < n_digits / 2; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
