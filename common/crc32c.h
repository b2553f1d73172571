/* crc32c.h - CRC-32C (Castagnoli), the checksum of etcd's WAL records and .snap files.
 *
 * Same semantics as Go's crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), p): crc is a
 * finished value (0 to start) and the result is finished too, so calls chain. */
#ifndef ER_CRC32C_H
#define ER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf[0..len) continuing from crc. Uses the SSE4.2 crc32 instruction when the
 * CPU has it (checked once at run time), else a slicing-by-8 table. Thread-safe. */
uint32_t crc32c_update(uint32_t crc, const uint8_t *buf, size_t len);

/* The portable table version, exposed so tests can compare both paths. */
uint32_t crc32c_update_sw(uint32_t crc, const uint8_t *buf, size_t len);

#endif
