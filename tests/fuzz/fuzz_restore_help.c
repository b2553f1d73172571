/* fuzz_restore_help.c - libFuzzer target for restore_help_has_bump (reading the restore tool's
 * `snapshot restore --help` text); invariants: it reads only the given bytes, and appending
 * text never turns a yes into a no (a flag found stays found). */
#include "restore.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char more[] = "\n  --other-flag\n";
    char *copy, *longer;
    bool yes;

    if (size > RESTORE_MAX_HELP)
        return 0;
    copy = malloc(size ? size : 1); /* exactly the input: ASan sees a read past its end */
    longer = malloc(size + sizeof(more));
    if (!copy || !longer) {
        free(copy);
        free(longer);
        return 0;
    }
    memcpy(copy, data, size);
    yes = restore_help_has_bump(copy, size);
    memcpy(longer, data, size);
    memcpy(longer + size, more, sizeof(more) - 1);
    if (yes && !restore_help_has_bump(longer, size + sizeof(more) - 1))
        __builtin_trap();
    free(copy);
    free(longer);
    return 0;
}
