/* fuzz_snap.c - libFuzzer target for datadir_snap_check on arbitrary .snap file bytes. */
#include "datadir.h"

#include <errno.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t index, term;
    int rc = datadir_snap_check(data, size, &index, &term);
    if (rc != 0 && rc != -EBADMSG)
        __builtin_trap();
    return 0;
}
