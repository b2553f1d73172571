/* test_grpc.c - the gRPC client against a real 3-member TLS etcd cluster (tests/cluster.sh).
 *
 * Reads ETCD_TEST_* from the environment (tests/integration/run.sh sets them). Messages are
 * encoded with the generated protobuf-c code; typed calls are test_etcd.c's business. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "clock.h"
#include "etcd.pb-c.h"
#include "grpc.h"
#include "tls.h"

#define N_MEMBERS 3
#define CALL_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 10000         /* generous: valgrind, a loaded machine */
#define FAILOVER_CONNECT_TIMEOUT_MS 1500 /* the paused member's handshake hangs this long */
#define REUSE_CALLS 100
#define MAX_SOCKETS 64
/* a 500 ms deadline on a stopped member returns about then; generous for a loaded machine */
#define SHORT_DEADLINE_MAX_MS 3000
#define SNAP_VALUES 24
#define SNAP_VALUE_SIZE (200u * 1024) /* 4.8 MB of values */

static char *endpoints[GRPC_MAX_ENDPOINTS];
static size_t n_endpoints;
static struct tls_ctx *tls;
static bool member_paused, member_stopped;

static int cluster(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cluster(const char *fmt, ...)
{
    char cmd[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int group_setup(void **state)
{
    const char *eps = getenv("ETCD_TEST_ENDPOINTS");
    struct tls_files files = {getenv("ETCD_TEST_CACERT"), getenv("ETCD_TEST_CERT"),
                              getenv("ETCD_TEST_KEY")};
    char err[256], *copy, *save = NULL;

    (void)state;
    if (!eps || !files.ca_file || !getenv("CLUSTER_DIR")) {
        fprintf(stderr, "test_grpc: ETCD_TEST_* not set (run via tests/integration/run.sh)\n");
        return -1;
    }
    copy = strdup(eps);
    for (char *t = strtok_r(copy, ",", &save); t && n_endpoints < GRPC_MAX_ENDPOINTS;
         t = strtok_r(NULL, ",", &save))
        endpoints[n_endpoints++] = strdup(t);
    free(copy);
    tls = tls_client_new(&files, err, sizeof err);
    if (!tls) {
        fprintf(stderr, "tls_client_new: %s\n", err);
        return -1;
    }
    return n_endpoints == N_MEMBERS ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (member_paused)
        cluster("tests/cluster.sh resume 1");
    tls_ctx_free(tls);
    for (size_t i = 0; i < n_endpoints; i++)
        free(endpoints[i]);
    return 0;
}

static struct grpc_channel *channel_of(const char *const *eps, size_t n, struct tls_ctx *t,
                                       int connect_timeout_ms)
{
    struct grpc_channel_config cfg = {
        .endpoints = eps,
        .n_endpoints = n,
        .tls = t,
        .connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : CONNECT_TIMEOUT_MS};
    char err[256];
    struct grpc_channel *ch = grpc_channel_new(&cfg, err, sizeof err);

    if (!ch)
        fail_msg("grpc_channel_new: %s", err);
    return ch;
}

/* MemberList; returns the gRPC code and the member count in *n. */
static int member_list(struct grpc_channel *ch, int timeout_ms, size_t *n, struct grpc_status *st)
{
    Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    Etcdserverpb__MemberListResponse *resp;
    uint8_t buf[64], *out = NULL;
    size_t len = etcdserverpb__member_list_request__pack(&req, buf), out_len = 0;
    int code = grpc_call_unary(ch, "/etcdserverpb.Cluster/MemberList", buf, len, timeout_ms, &out,
                               &out_len, st);

    *n = 0;
    if (code != GRPC_OK)
        return code;
    resp = etcdserverpb__member_list_response__unpack(NULL, out_len, out);
    free(out);
    assert_non_null(resp);
    *n = resp->n_members;
    for (size_t i = 0; i < resp->n_members; i++) {
        assert_non_null(resp->members[i]->name);
        assert_true(resp->members[i]->id != 0);
        assert_true(resp->members[i]->n_clienturls >= 1);
    }
    etcdserverpb__member_list_response__free_unpacked(resp, NULL);
    return code;
}

/* The socket inodes this process has open (a reconnect makes a new one). */
static size_t socket_inodes(unsigned long *out, size_t max)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    size_t n = 0;
    char link[64];
    ssize_t l;

    assert_non_null(d);
    while ((e = readdir(d)) && n < max) {
        l = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (l <= 0)
            continue;
        link[l] = '\0';
        if (strncmp(link, "socket:[", 8) == 0)
            out[n++] = strtoul(link + 8, NULL, 10);
    }
    closedir(d);
    return n;
}

static void test_member_list(void **state)
{
    struct grpc_channel *ch = channel_of((const char *const *)endpoints, n_endpoints, tls, 0);
    struct grpc_status st;
    size_t n;

    (void)state;
    assert_null(grpc_channel_endpoint(ch));
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    assert_string_equal(st.message, "");
    assert_false(st.transport);
    assert_int_equal(n, N_MEMBERS);
    assert_non_null(grpc_channel_endpoint(ch));
    assert_string_equal(st.endpoint, grpc_channel_endpoint(ch));
    grpc_channel_free(ch);
}

static void test_connection_reuse(void **state)
{
    struct grpc_channel *ch = channel_of((const char *const *)endpoints, n_endpoints, tls, 0);
    unsigned long before[MAX_SOCKETS], after[MAX_SOCKETS];
    size_t n, nb, na;
    struct grpc_status st;
    const char *ep;
    long long t0;

    (void)state;
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    ep = grpc_channel_endpoint(ch);
    assert_non_null(ep);
    nb = socket_inodes(before, MAX_SOCKETS);
    t0 = clock_mono_ms();
    for (int i = 0; i < REUSE_CALLS; i++) {
        assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
        assert_int_equal(n, N_MEMBERS);
        assert_ptr_equal(grpc_channel_endpoint(ch), ep);
    }
    print_message("%d MemberList calls on one channel: %lld ms\n", REUSE_CALLS,
                  clock_mono_ms() - t0);
    na = socket_inodes(after, MAX_SOCKETS);
    /* same sockets: no reconnect happened */
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_int_equal(after[i], before[i]);
    /* close and reconnect */
    grpc_channel_close(ch);
    assert_null(grpc_channel_endpoint(ch));
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    grpc_channel_free(ch);
}

/* A port on 127.0.0.1 where nothing listens. */
static int closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void test_failover(void **state)
{
    char dead[64];
    const char *eps[2] = {dead, endpoints[0]};
    struct grpc_channel *ch;
    struct grpc_status st;
    size_t n;

    (void)state;
    snprintf(dead, sizeof dead, "https://127.0.0.1:%d", closed_port());
    ch = channel_of(eps, 2, tls, 0);
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    assert_int_equal(n, N_MEMBERS);
    assert_string_equal(grpc_channel_endpoint(ch), endpoints[0]);
    grpc_channel_free(ch);

    /* only dead endpoints: a clear transport error */
    ch = channel_of(eps, 1, tls, 0);
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_UNAVAILABLE);
    assert_true(st.transport);
    print_message("all endpoints down: %s\n", st.message);
    assert_non_null(strstr(st.message, "connect 127.0.0.1:"));
    assert_non_null(strstr(st.message, "Connection refused"));
    assert_string_equal(st.endpoint, dead);
    assert_null(grpc_channel_endpoint(ch));
    grpc_channel_free(ch);
}

static void test_wrong_ca(void **state)
{
    struct tls_files files = {getenv("ETCD_TEST_OTHER_CACERT"), getenv("ETCD_TEST_CERT"),
                              getenv("ETCD_TEST_KEY")};
    struct tls_ctx *other;
    struct grpc_channel *ch;
    struct grpc_status st;
    char err[256];
    size_t n;

    (void)state;
    assert_non_null(files.ca_file);
    other = tls_client_new(&files, err, sizeof err);
    assert_non_null(other);
    ch = channel_of((const char *const *)endpoints, n_endpoints, other, 0);
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_UNAVAILABLE);
    assert_true(st.transport);
    print_message("wrong CA: %s\n", st.message);
    assert_non_null(strstr(st.message, "tls handshake with 127.0.0.1:"));
    assert_non_null(strstr(st.message, "certificate verify failed"));
    grpc_channel_free(ch);
    tls_ctx_free(other);
}

static int resume_teardown(void **state)
{
    (void)state;
    if (member_paused && cluster("tests/cluster.sh resume 1") == 0)
        member_paused = false;
    return 0;
}

static void test_deadline(void **state)
{
    const char *eps[2] = {endpoints[1], endpoints[0]};
    struct grpc_channel *ch = channel_of(eps, 1, tls, 0), *fresh, *fo;
    struct grpc_status st;
    long long t0, took;
    size_t n;

    (void)state;
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    assert_int_equal(cluster("tests/cluster.sh pause 1"), 0);
    member_paused = true;

    /* on an open connection: RST_STREAM after the local deadline */
    t0 = clock_mono_ms();
    assert_int_equal(member_list(ch, 500, &n, &st), GRPC_DEADLINE_EXCEEDED);
    took = clock_mono_ms() - t0;
    print_message("deadline on an open connection: %lld ms (%s)\n", took, st.message);
    assert_true(took >= 450 && took < SHORT_DEADLINE_MAX_MS);
    assert_true(st.transport);

    /* a new connection: the handshake hangs, the call deadline bounds it */
    t0 = clock_mono_ms();
    assert_int_equal(member_list(ch, 500, &n, &st), GRPC_DEADLINE_EXCEEDED);
    took = clock_mono_ms() - t0;
    assert_true(took >= 450 && took < SHORT_DEADLINE_MAX_MS);
    print_message("paused member, new connection: %s\n", st.message);
    assert_non_null(strstr(st.message, "tls handshake"));

    /* the other members still answer */
    fresh = channel_of(eps + 1, 1, tls, 0);
    assert_int_equal(member_list(fresh, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    grpc_channel_free(fresh);

    /* failover from the stopped member by its connect timeout */
    fo = channel_of(eps, 2, tls, FAILOVER_CONNECT_TIMEOUT_MS);
    t0 = clock_mono_ms();
    assert_int_equal(member_list(fo, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    took = clock_mono_ms() - t0;
    assert_string_equal(grpc_channel_endpoint(fo), endpoints[0]);
    assert_true(took >= FAILOVER_CONNECT_TIMEOUT_MS - 50);
    grpc_channel_free(fo);
    grpc_channel_free(ch);
}

static int block_stream(void *arg, const uint8_t *msg, size_t len)
{
    (void)msg;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static void test_idle_timeout(void **state)
{
    struct grpc_channel *ch = channel_of((const char *const *)&endpoints[1], 1, tls, 0);
    struct grpc_status st;
    long long t0, took;
    int msgs = 0;
    size_t n;

    (void)state;
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    assert_int_equal(cluster("tests/cluster.sh pause 1"), 0);
    member_paused = true;
    t0 = clock_mono_ms();
    assert_int_equal(grpc_call_stream(ch, "/etcdserverpb.Maintenance/Snapshot", NULL, 0, 0, 500,
                                      block_stream, &msgs, &st),
                     GRPC_DEADLINE_EXCEEDED);
    took = clock_mono_ms() - t0;
    assert_true(took >= 450 && took < SHORT_DEADLINE_MAX_MS);
    assert_non_null(strstr(st.message, "no data from"));
    assert_int_equal(msgs, 0);
    grpc_channel_free(ch);
}

struct snap {
    size_t messages, blob_bytes, db_size;
    EVP_MD_CTX *sha;
    uint8_t last[32];
    size_t last_len;
    int cancel_after;
};

static int on_snapshot(void *arg, const uint8_t *msg, size_t len)
{
    struct snap *s = arg;
    Etcdserverpb__SnapshotResponse *r = etcdserverpb__snapshot_response__unpack(NULL, len, msg);

    if (!r)
        return 1;
    if (s->messages == 0)
        s->db_size = r->remaining_bytes + r->blob.len;
    /* hash everything but the final digest message */
    if (s->last_len)
        EVP_DigestUpdate(s->sha, s->last, s->last_len);
    s->last_len = 0;
    if (r->remaining_bytes == 0 && r->blob.len == 32) {
        memcpy(s->last, r->blob.data, 32);
        s->last_len = 32;
    } else {
        EVP_DigestUpdate(s->sha, r->blob.data, r->blob.len);
    }
    s->messages++;
    s->blob_bytes += r->blob.len;
    etcdserverpb__snapshot_response__free_unpacked(r, NULL);
    return s->cancel_after && s->messages >= (size_t)s->cancel_after;
}

/* Puts n values of `size` bytes (requests larger than etcd's 64 KiB initial window). */
static void put_values(struct grpc_channel *ch, int n, size_t size)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    uint8_t *val = malloc(size), *buf = malloc(size + 64), *out = NULL;
    char key[32];
    struct grpc_status st;
    size_t out_len, len;

    assert_non_null(val);
    assert_non_null(buf);
    for (size_t i = 0; i < size; i++)
        val[i] = (uint8_t)(i * 7 + 3);
    for (int k = 0; k < n; k++) {
        snprintf(key, sizeof key, "test-grpc/%d", k);
        val[0] = (uint8_t)k;
        req.key.data = (uint8_t *)key;
        req.key.len = strlen(key);
        req.value.data = val;
        req.value.len = size;
        len = etcdserverpb__put_request__pack(&req, buf);
        assert_int_equal(grpc_call_unary(ch, "/etcdserverpb.KV/Put", buf, len, CALL_TIMEOUT_MS,
                                         &out, &out_len, &st),
                         GRPC_OK);
        free(out);
    }
    free(val);
    free(buf);
}

static void test_snapshot_stream(void **state)
{
    struct grpc_channel *ch = channel_of((const char *const *)endpoints, n_endpoints, tls, 0);
    struct snap s = {.sha = EVP_MD_CTX_new()};
    uint8_t digest[32];
    unsigned dlen = 0;
    struct grpc_status st;
    long long t0;
    size_t n;

    (void)state;
    put_values(ch, SNAP_VALUES, SNAP_VALUE_SIZE);
    assert_non_null(s.sha);
    t0 = clock_mono_ms();
    assert_int_equal(EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL), 1);
    assert_int_equal(grpc_call_stream(ch, "/etcdserverpb.Maintenance/Snapshot", NULL, 0,
                                      CALL_TIMEOUT_MS * 3, CALL_TIMEOUT_MS, on_snapshot, &s, &st),
                     GRPC_OK);
    print_message("snapshot: %zu messages, db %zu bytes, %lld ms\n", s.messages, s.db_size,
                  clock_mono_ms() - t0);
    assert_true(s.db_size >= (size_t)SNAP_VALUES * SNAP_VALUE_SIZE);
    assert_true(s.db_size > 0);
    assert_int_equal(s.last_len, 32);
    assert_int_equal(s.blob_bytes, s.db_size + 32);
    assert_int_equal(EVP_DigestFinal_ex(s.sha, digest, &dlen), 1);
    assert_memory_equal(digest, s.last, 32);
    EVP_MD_CTX_free(s.sha);

    /* the smallest windows HTTP/2 allows: many WINDOW_UPDATEs, same bytes */
    {
        struct grpc_channel_config cfg = {.endpoints = (const char *const *)endpoints,
                                          .n_endpoints = 1,
                                          .tls = tls,
                                          .connect_timeout_ms = CONNECT_TIMEOUT_MS,
                                          .window_size = 65535};
        char err[256];
        struct grpc_channel *small = grpc_channel_new(&cfg, err, sizeof err);
        size_t db_size = s.db_size;

        assert_non_null(small);
        memset(&s, 0, sizeof s);
        s.sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL);
        t0 = clock_mono_ms();
        assert_int_equal(grpc_call_stream(small, "/etcdserverpb.Maintenance/Snapshot", NULL, 0,
                                          CALL_TIMEOUT_MS * 3, CALL_TIMEOUT_MS, on_snapshot, &s,
                                          &st),
                         GRPC_OK);
        print_message("snapshot with 64 KiB windows: %lld ms\n", clock_mono_ms() - t0);
        assert_int_equal(EVP_DigestFinal_ex(s.sha, digest, &dlen), 1);
        assert_memory_equal(digest, s.last, 32);
        assert_true(s.db_size >= db_size);
        EVP_MD_CTX_free(s.sha);
        grpc_channel_free(small);
    }

    /* cancel from the callback: CANCELLED, and the connection still serves the next call */
    memset(&s, 0, sizeof s);
    s.sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL);
    s.cancel_after = 1;
    assert_int_equal(grpc_call_stream(ch, "/etcdserverpb.Maintenance/Snapshot", NULL, 0,
                                      CALL_TIMEOUT_MS, 0, on_snapshot, &s, &st),
                     GRPC_CANCELLED);
    assert_int_equal(s.messages, 1);
    EVP_MD_CTX_free(s.sha);
    assert_non_null(grpc_channel_endpoint(ch));
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    grpc_channel_free(ch);
}

static void test_unimplemented(void **state)
{
    struct grpc_channel *ch = channel_of((const char *const *)endpoints, n_endpoints, tls, 0);
    struct grpc_status st;
    uint8_t *out = NULL;
    size_t out_len = 0, n;

    (void)state;
    assert_int_equal(grpc_call_unary(ch, "/etcdserverpb.Cluster/NoSuchMethod", NULL, 0,
                                     CALL_TIMEOUT_MS, &out, &out_len, &st),
                     GRPC_UNIMPLEMENTED);
    print_message("unknown method: %s %s\n", grpc_code_name(st.code), st.message);
    assert_false(st.transport);
    assert_null(out);
    assert_true(st.message[0] != '\0');
    /* a status error keeps the connection */
    assert_non_null(grpc_channel_endpoint(ch));
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    grpc_channel_free(ch);
}

static int restart_teardown(void **state)
{
    (void)state;
    if (member_stopped && cluster("tests/cluster.sh start 2 existing >/dev/null && "
                                  "tests/cluster.sh wait-healthy 2 >/dev/null") == 0)
        member_stopped = false;
    return 0;
}

/* A member shut down under an idle connection (GOAWAY, then EOF): the next call notices,
 * reconnects and fails over to the next endpoint. */
static void test_server_goes_away(void **state)
{
    const char *eps[2] = {endpoints[2], endpoints[0]};
    struct grpc_channel *ch = channel_of(eps, 2, tls, 0);
    struct grpc_status st;
    size_t n;

    (void)state;
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    assert_string_equal(grpc_channel_endpoint(ch), endpoints[2]);
    assert_int_equal(cluster("tests/cluster.sh stop 2"), 0);
    member_stopped = true;
    assert_int_equal(member_list(ch, CALL_TIMEOUT_MS, &n, &st), GRPC_OK);
    assert_string_equal(grpc_channel_endpoint(ch), endpoints[0]);
    grpc_channel_free(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_list),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test_teardown(test_deadline, resume_teardown),
        cmocka_unit_test_teardown(test_idle_timeout, resume_teardown),
        cmocka_unit_test(test_snapshot_stream),
        cmocka_unit_test(test_unimplemented),
        cmocka_unit_test_teardown(test_server_goes_away, restart_teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
