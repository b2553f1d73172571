/* bench_fill.c - fills an etcd with COUNT keys PREFIX<n> of SIZE random bytes each, through
 * the project's own gRPC client (one process instead of COUNT etcdctl runs). Used by
 * tests/e2e/snapshot.sh (tens of MB) and tests/bench/snapshot.sh (~800 MB).
 *
 * usage: bench_fill ENDPOINT CACERT CERT KEY COUNT SIZE PREFIX */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "config.h"
#include "etcd.h"
#include "grpc.h"
#include "testutil.h"
#include "tls.h"

#define FILL_MAX_VALUE (1u << 20) /* etcd's request limit is ~1.5 MiB */
#define FILL_MAX_COUNT 100000u
#define FILL_TIMEOUT_MS 30000

int main(int argc, char **argv)
{
    uint64_t count, size;
    int rc = 1;
    uint8_t *buf = NULL;
    struct tls_ctx *tls = NULL;
    struct grpc_channel *ch = NULL;
    if (argc != 8 || config_parse_u64(argv[5], 1, FILL_MAX_COUNT, &count) < 0 ||
        config_parse_u64(argv[6], 1, FILL_MAX_VALUE, &size) < 0) {
        fprintf(stderr, "usage: %s ENDPOINT CACERT CERT KEY COUNT SIZE PREFIX\n", argv[0]);
        return 2;
    }
    struct tls_files files = {.ca_file = argv[2], .cert_file = argv[3], .key_file = argv[4]};
    if (test_channel_open(argv[0], argv[1], &files, &tls, &ch) < 0)
        goto out;
    if (!(buf = malloc(size)))
        goto out;
    for (uint64_t i = 0; i < count; i++) {
        char key[256];
        struct grpc_status st;
        if (snprintf(key, sizeof key, "%s%06llu", argv[7], (unsigned long long)i) >=
                (int)sizeof key ||
            RAND_bytes(buf, (int)size) != 1)
            goto out;
        if (etcd_put(ch, key, buf, size, FILL_TIMEOUT_MS, &st) != GRPC_OK) {
            fprintf(stderr, "put %s: %s\n", key, st.message);
            goto out;
        }
    }
    rc = 0;
out:
    free(buf);
    grpc_channel_free(ch);
    tls_ctx_free(tls);
    return rc;
}
