/* testutil.h - helpers shared by the test programs (linked into every test binary). */
#ifndef ER_TESTUTIL_H
#define ER_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "grpc.h"
#include "tls.h"

/* Factor (1..100) for generous test time limits, from TEST_TIME_SCALE: tests/run.sh raises it
 * under valgrind and ASan, where everything runs many times slower. Limits scaled by it are
 * upper bounds against hangs, never the thing a test measures. */
int test_time_scale(void);

/* Removes dir and everything below it (no symlinks followed). Returns 0 or -1 with errno. */
int test_rm_tree(const char *dir);

/* Little-endian stores, as bbolt and the WAL lay out their integers. */
void test_put_le32(uint8_t *p, uint32_t v);
void test_put_le64(uint8_t *p, uint64_t v);

/* Writes a valid bbolt meta page header and meta (the first TEST_BBOLT_META_LEN bytes of p,
 * zeroing the rest of them): page id pgid, magic, version 2, page_size, root page 3, freelist
 * page 2, high-water page hwm, txid, and its FNV-1a checksum. */
#define TEST_BBOLT_META_LEN 80
void test_bbolt_meta(uint8_t *p, uint64_t pgid, uint32_t page_size, uint64_t txid, uint64_t hwm);

/* Writes size pseudo-random bytes (xorshift64 from seed: the same seed, the same bytes) to a new
 * file at path. Returns 0 or a negative errno. */
int test_file_fill(const char *path, size_t size, uint64_t seed);

/* The sha256 of the file at path as 64 lower-case hex digits and a NUL in hex. Returns 0 or a
 * negative errno. */
int test_file_sha256(const char *path, char hex[65]);

/* A growing in-memory sink for the streaming encoders and decoders' output callbacks (age_enc_new,
 * codec_*): start it zeroed, free p when done. fail_after > 0 makes the call with that number
 * (counted in calls) and every later one fail with -ENOSPC, as a full disk would. */
struct test_buf {
    uint8_t *p;
    size_t len, cap;
    int fail_after;
    int calls;
};
/* The sink callback for a struct test_buf *arg: appends data; 0, -ENOSPC or -ENOMEM. */
int test_buf_sink(void *arg, const uint8_t *data, size_t len);

/* A TLS client context from `files` and a gRPC channel to the one `endpoint` over it. Returns 0
 * with *tls and *ch set (the caller frees both: grpc_channel_free, then tls_ctx_free), or -1
 * after printing "<who>: <reason>" to stderr, with whichever of them was made left set for the
 * same frees (each accepts NULL). */
int test_channel_open(const char *who, const char *endpoint, const struct tls_files *files,
                      struct tls_ctx **tls, struct grpc_channel **ch);

#endif
