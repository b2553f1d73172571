/* fuzz_input.h - the two copies of a libFuzzer input the targets hand to parsers: one of exactly
 * its size (ASan sees any read past the end) and a NUL-terminated one. What each target checks on
 * the parsers' results stays in its own fuzz_*.c. */
#ifndef ER_FUZZ_INPUT_H
#define ER_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* malloc'd copy of exactly size bytes (one byte for an empty input), not NUL-terminated; NULL
 * when out of memory. The caller frees it. */
static inline char *fuzz_copy_exact(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);

    if (s)
        memcpy(s, data, size);
    return s;
}

/* malloc'd copy of the size bytes plus a NUL; NULL when out of memory. The caller frees it. */
static inline char *fuzz_copy_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
