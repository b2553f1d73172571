/* bench_member_list.c - times N (default 100) MemberList calls over one gRPC channel (one
 * HTTP/2 connection, TLS handshake included in the first call) against the cluster named by
 * ETCD_TEST_ENDPOINTS / _CACERT / _CERT / _KEY. Prints per-call figures and a last line
 * "total_ms=<ms>" for tests/bench/member_list.sh. usage: bench_member_list [N] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "etcd.h"

#define BENCH_DEFAULT_CALLS 100
#define BENCH_MAX_CALLS 1000000
#define BENCH_MAX_EPS 16
#define BENCH_TIMEOUT_MS 10000

static double now_ms(void)
{
    return (double)clock_mono_ns() / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    const char *eps_env = getenv("ETCD_TEST_ENDPOINTS");
    struct tls_files files = {getenv("ETCD_TEST_CACERT"), getenv("ETCD_TEST_CERT"),
                              getenv("ETCD_TEST_KEY")};
    char *eps[BENCH_MAX_EPS];
    size_t n_eps = 0;
    unsigned long calls = BENCH_DEFAULT_CALLS;
    struct tls_ctx *tls = NULL;
    struct grpc_channel *ch = NULL;
    char err[256];
    int rc = 1;

    if (argc > 1) {
        char *end;
        calls = strtoul(argv[1], &end, 10);
        if (*end || calls == 0 || calls > BENCH_MAX_CALLS) {
            fprintf(stderr, "usage: %s [N]  (1..%d calls)\n", argv[0], BENCH_MAX_CALLS);
            return 2;
        }
    }
    if (!eps_env || !files.ca_file || !files.cert_file || !files.key_file) {
        fprintf(stderr, "bench_member_list: set ETCD_TEST_ENDPOINTS, _CACERT, _CERT, _KEY\n");
        return 2;
    }
    for (const char *p = eps_env; *p && n_eps < BENCH_MAX_EPS;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        eps[n_eps] = strndup(p, l);
        if (!eps[n_eps])
            goto out;
        n_eps++;
        p += l + (c ? 1 : 0);
    }
    tls = tls_client_new(&files, err, sizeof(err));
    if (!tls) {
        fprintf(stderr, "bench_member_list: %s\n", err);
        goto out;
    }
    struct grpc_channel_config cfg = {
        .endpoints = (const char *const *)eps, .n_endpoints = n_eps, .tls = tls};
    ch = grpc_channel_new(&cfg, err, sizeof(err));
    if (!ch) {
        fprintf(stderr, "bench_member_list: %s\n", err);
        goto out;
    }

    double t0 = now_ms(), c0 = cpu_ms(), first = 0, worst = 0;
    size_t members = 0;
    for (unsigned long i = 0; i < calls; i++) {
        struct etcd_member_list l;
        struct grpc_status st;
        double t = now_ms();
        if (etcd_member_list(ch, BENCH_TIMEOUT_MS, &l, &st) != GRPC_OK) {
            fprintf(stderr, "bench_member_list: call %lu: %s %s\n", i + 1, grpc_code_name(st.code),
                    st.message);
            goto out;
        }
        t = now_ms() - t;
        if (i == 0)
            first = t;
        else if (t > worst)
            worst = t;
        members = l.n_members;
        etcd_member_list_free(&l);
    }
    double total = now_ms() - t0, cpu = cpu_ms() - c0;
    printf("bench_member_list: %lu calls, %zu members, one connection to %s\n", calls, members,
           grpc_channel_endpoint(ch) ? grpc_channel_endpoint(ch) : "?");
    printf("  first call (connect + TLS): %.2f ms\n", first);
    if (calls > 1)
        printf("  later calls: mean %.3f ms, worst %.3f ms\n",
               (total - first) / (double)(calls - 1), worst);
    printf("  client CPU: %.1f ms\n", cpu);
    printf("total_ms=%.1f\n", total);
    rc = 0;
out:
    grpc_channel_free(ch);
    tls_ctx_free(tls);
    for (size_t i = 0; i < n_eps; i++)
        free(eps[i]);
    return rc;
}
