/* testutil.h - helpers shared by the test programs (linked into every test binary). */
#ifndef ER_TESTUTIL_H
#define ER_TESTUTIL_H

#include "grpc.h"
#include "tls.h"

/* Factor (1..100) for generous test time limits, from TEST_TIME_SCALE: tests/run.sh raises it
 * under valgrind and ASan, where everything runs many times slower. Limits scaled by it are
 * upper bounds against hangs, never the thing a test measures. */
int test_time_scale(void);

/* Removes dir and everything below it (no symlinks followed). Returns 0 or -1 with errno. */
int test_rm_tree(const char *dir);

/* A TLS client context from `files` and a gRPC channel to the one `endpoint` over it. Returns 0
 * with *tls and *ch set (the caller frees both: grpc_channel_free, then tls_ctx_free), or -1
 * after printing "<who>: <reason>" to stderr, with whichever of them was made left set for the
 * same frees (each accepts NULL). */
int test_channel_open(const char *who, const char *endpoint, const struct tls_files *files,
                      struct tls_ctx **tls, struct grpc_channel **ch);

#endif
