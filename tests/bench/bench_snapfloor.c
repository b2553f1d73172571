/* bench_snapfloor.c - the floor of a streamed snapshot: one Maintenance.Snapshot from the first
 * of ETCD_TEST_ENDPOINTS (with _CACERT, _CERT, _KEY) through common/etcd (16 MiB HTTP/2
 * windows, TLS read-ahead), received, sha256-verified and dropped. What remains is etcd's send
 * path plus the least a client must do (TLS decryption, the digest check). Prints
 * "bytes=<n> wall_ms=<ms> cpu_ms=<ms>" for tests/bench/snapshot.sh. usage: bench_snapfloor */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd.h"
#include "testutil.h"

#define FLOOR_IDLE_TIMEOUT_MS 30000

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int on_data(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    (void)total;
    (void)blob;
    *(uint64_t *)arg += len;
    return 0;
}

int main(void)
{
    const char *eps_env = getenv("ETCD_TEST_ENDPOINTS");
    struct tls_files files = {getenv("ETCD_TEST_CACERT"), getenv("ETCD_TEST_CERT"),
                              getenv("ETCD_TEST_KEY")};
    char ep[256];
    struct tls_ctx *tls = NULL;
    struct grpc_channel *ch = NULL;
    int rc = 1;

    if (!eps_env || !files.ca_file || !files.cert_file || !files.key_file) {
        fprintf(stderr, "bench_snapfloor: set ETCD_TEST_ENDPOINTS, _CACERT, _CERT, _KEY\n");
        return 2;
    }
    size_t l = strcspn(eps_env, ",");
    if (l == 0 || l >= sizeof ep) {
        fprintf(stderr, "bench_snapfloor: bad ETCD_TEST_ENDPOINTS\n");
        return 2;
    }
    memcpy(ep, eps_env, l);
    ep[l] = '\0';
    if (test_channel_open("bench_snapfloor", ep, &files, &tls, &ch) < 0)
        goto out;
    uint64_t bytes = 0;
    uint8_t digest[32];
    struct grpc_status st;
    double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    if (etcd_snapshot(ch, 0, FLOOR_IDLE_TIMEOUT_MS, on_data, &bytes, digest, &st) != GRPC_OK) {
        fprintf(stderr, "bench_snapfloor: %s %s\n", grpc_code_name(st.code), st.message);
        goto out;
    }
    printf("bytes=%" PRIu64 " wall_ms=%.1f cpu_ms=%.1f\n", bytes, clock_ms(CLOCK_MONOTONIC) - t0,
           clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0);
    rc = 0;
out:
    grpc_channel_free(ch);
    tls_ctx_free(tls);
    return rc;
}
