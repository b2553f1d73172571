/* fuzz_divergent_marker.c - libFuzzer target for divergent_parse (the "<data-dir>.divergent"
 * marker); invariant: a parsed marker renders and parses back to the same struct. */
#include "divergent.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct divergent_marker m, back;
    static char buf[DIVERGENT_MAX_BYTES + 1];
    int rc = divergent_parse((const char *)data, size, &m);

    if (rc != 0 && rc != -EINVAL)
        __builtin_trap();
    if (rc == 0) {
        if (divergent_render(&m, buf, sizeof(buf)) != 0 ||
            divergent_parse(buf, strlen(buf), &back) != 0 || memcmp(&m, &back, sizeof(m)) != 0)
            __builtin_trap();
    }
    return 0;
}
