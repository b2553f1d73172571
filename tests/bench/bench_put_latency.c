/* bench_put_latency.c - sequential small Puts through the project's gRPC client, one
 * connection; prints the latency percentiles (tests/bench/maint.sh: write p99 idle and during a
 * HashKV check).
 *
 * usage: bench_put_latency ENDPOINT CACERT CERT KEY COUNT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "etcd.h"
#include "grpc.h"
#include "testutil.h"
#include "tls.h"

#define PUT_MAX_COUNT 100000u
#define PUT_TIMEOUT_MS 30000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint64_t count;
    int rc = 1;
    double *lat = NULL;
    struct tls_ctx *tls = NULL;
    struct grpc_channel *ch = NULL;
    if (argc != 6 || config_parse_u64(argv[5], 1, PUT_MAX_COUNT, &count) < 0) {
        fprintf(stderr, "usage: %s ENDPOINT CACERT CERT KEY COUNT\n", argv[0]);
        return 2;
    }
    struct tls_files files = {.ca_file = argv[2], .cert_file = argv[3], .key_file = argv[4]};
    if (test_channel_open(argv[0], argv[1], &files, &tls, &ch) < 0 ||
        !(lat = calloc(count, sizeof(*lat))))
        goto out;
    for (uint64_t i = 0; i < count; i++) {
        char key[64];
        struct grpc_status st;
        (void)snprintf(key, sizeof key, "/bench/put/%llu", (unsigned long long)(i % 100));
        double t0 = now_ms();
        if (etcd_put(ch, key, (const uint8_t *)"v", 1, PUT_TIMEOUT_MS, &st) != GRPC_OK) {
            fprintf(stderr, "put %s: %s\n", key, st.message);
            goto out;
        }
        lat[i] = now_ms() - t0;
    }
    qsort(lat, count, sizeof(*lat), cmp);
    printf("puts=%llu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", (unsigned long long)count,
           lat[count / 2], lat[(count * 99) / 100], lat[count - 1]);
    rc = 0;
out:
    free(lat);
    grpc_channel_free(ch);
    tls_ctx_free(tls);
    return rc;
}
