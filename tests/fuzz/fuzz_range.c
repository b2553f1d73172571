/* fuzz_range.c - libFuzzer target for the untrusted strings agent/saved.c parses: the Range
 * header (against a file size taken from the first 8 input bytes) and snapshot names from the
 * URL path. Checks the results' invariants, not just the absence of crashes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saved.h"

#define FUZZ_MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t fsize = 0, first = 0, last = 0;
    if (size < 8 || size > FUZZ_MAX_INPUT)
        return 0;
    memcpy(&fsize, data, 8);
    fsize >>= (data[0] & 63); /* small sizes too */
    char *s = malloc(size - 8 + 1);
    if (!s)
        return 0;
    memcpy(s, data + 8, size - 8);
    s[size - 8] = '\0';
    int r = saved_parse_range(s, fsize, &first, &last);
    if (r == 0 && !(first <= last && last < fsize))
        abort();
    if (r != 0 && r != -EINVAL && r != -ERANGE)
        abort();
    if (saved_name_valid(s) && (strchr(s, '/') || strstr(s, "..") || strlen(s) >= SAVED_NAME_MAX))
        abort();
    free(s);
    return 0;
}
