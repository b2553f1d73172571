/* fuzz_base64.c - libFuzzer target for common/base64.c. Invariants, padded and unpadded: the
 * decoder never writes past its room, validating (NULL output) agrees with decoding, and what
 * it accepts re-encodes to exactly the input (strict: one encoding per byte string). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

#define FUZZ_BASE64_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[3 * (FUZZ_BASE64_MAX / 4) + 3];
    static char again[FUZZ_BASE64_MAX + 4];

    if (size > FUZZ_BASE64_MAX)
        return 0;
    for (int pad = 0; pad <= 1; pad++) {
        const char *s = (const char *)data;
        long n = base64_decode(s, size, out, sizeof out, pad);

        if (n != base64_decode(s, size, NULL, 0, pad))
            abort();
        if (n < 0)
            continue;
        if ((size_t)n > sizeof out || base64_encode(out, (size_t)n, again, pad) != size ||
            memcmp(again, s, size) != 0)
            abort();
        if (n > 0 && base64_decode(s, size, out, (size_t)n - 1, pad) != -1)
            abort();
    }
    return 0;
}
