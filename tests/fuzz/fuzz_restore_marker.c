/* fuzz_restore_marker.c - libFuzzer target for restore_marker_parse (the on-disk restore marker)
 * and restore_sniff; invariant: a parsed marker renders and parses back to the same struct. */
#include "restore.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct restore_marker m, back;
    static char buf[RESTORE_MAX_MARKER + 1];
    int rc = restore_marker_parse((const char *)data, size, &m);

    (void)restore_sniff(data, size);
    if (rc != 0 && rc != -EINVAL)
        __builtin_trap();
    if (rc == 0 && restore_marker_render(&m, buf, sizeof(buf)) == 0) {
        if (restore_marker_parse(buf, strlen(buf), &back) != 0 || memcmp(&m, &back, sizeof(m)) != 0)
            __builtin_trap();
    }
    return 0;
}
