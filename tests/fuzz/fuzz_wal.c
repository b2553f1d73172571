/* fuzz_wal.c - libFuzzer target for datadir_wal_scan: arbitrary bytes as one WAL file, both as
 * the first file and as a later one (first byte picks the incoming CRC). */
#include "datadir.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_snapshot(void *arg, uint64_t index, uint64_t term)
{
    *(uint64_t *)arg += index ^ term;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wal_scan scan;
    uint32_t crc = 0;
    uint64_t sink = 0;
    memset(&scan, 0, sizeof scan);
    scan.on_snapshot = on_snapshot;
    scan.arg = &sink;
    int rc = datadir_wal_scan(data, size, true, &crc, &scan);
    if (rc < 0 && scan.reason[0] == '\0')
        __builtin_trap(); /* every failure says why */
    if (scan.end_offset > size)
        __builtin_trap();
    /* the same bytes as a later file, continuing from a chained CRC and the IDs found */
    crc = size ? data[0] * 0x01000193u : 0;
    rc = datadir_wal_scan(data, size, false, &crc, &scan);
    if (rc < 0 && scan.reason[0] == '\0')
        __builtin_trap();
    return 0;
}
