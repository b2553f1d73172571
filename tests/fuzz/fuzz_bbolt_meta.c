/* fuzz_bbolt_meta.c - libFuzzer target for datadir_bbolt_meta on arbitrary page bytes. */
#include "datadir.h"

#include <errno.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bbolt_meta m;
    int rc = datadir_bbolt_meta(data, size, &m);
    if (rc == 0 && !m.valid)
        __builtin_trap();
    if (rc == -EINVAL && m.valid)
        __builtin_trap();
    if (size < 80 && rc != -EMSGSIZE)
        __builtin_trap();
    return 0;
}
