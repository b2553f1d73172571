/* test_etcd.c - etcd.c's calls against a real 3-member TLS cluster (tests/cluster.sh; env
 * ETCD_TEST_*): member list equal to etcdctl's, status, alarms, put + serializable range,
 * learner add/promote/remove with a real new member, unknown-ID remove, a multi-MB snapshot
 * with its sha256, deadline expiry on a paused member, failover and a wrong CA.
 * Tests that change the cluster put it back to 3 healthy members in their teardown. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "array.h"
#include "clock.h"
#include "etcd.h"

#define TIMEOUT_MS 10000
#define CLUSTER_SH "tests/cluster.sh"
#define MAX_EPS 8
#define CMD_MAX 4096
#define OUT_MAX (256 * 1024)
#define PROMOTE_BUDGET_MS 30000
#define SNAP_KEYS 200
#define SNAP_VALUE (16 * 1024)

struct env {
    char *endpoints[MAX_EPS]; /* client URLs of members 0..n-1 */
    size_t n;
    const char *cacert, *cert, *key, *other_cacert, *initial_cluster;
    struct tls_ctx *tls;
    struct grpc_channel *ch; /* all endpoints */
};

static struct env E;

/* ---- helpers ----------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return -1;
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* Runs a shell command and returns its stdout (malloc'd, NUL-terminated) or NULL. */
static char *capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *capture(const char *fmt, ...)
{
    char cmd[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return NULL;
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    char *buf = malloc(OUT_MAX);
    size_t len = 0;
    if (buf) {
        size_t got;
        while (len < OUT_MAX - 1 && (got = fread(buf + len, 1, OUT_MAX - 1 - len, f)) > 0)
            len += got;
        buf[len] = 0;
    }
    if (pclose(f) != 0) {
        free(buf);
        return NULL;
    }
    while (buf && len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = 0;
    return buf;
}

static struct grpc_channel *channel(const char *const *eps, size_t n, struct tls_ctx *tls)
{
    char err[256];
    struct grpc_channel_config cfg = {.endpoints = eps, .n_endpoints = n, .tls = tls};
    struct grpc_channel *ch = grpc_channel_new(&cfg, err, sizeof(err));
    if (!ch)
        fail_msg("grpc_channel_new: %s", err);
    return ch;
}

static struct grpc_channel *member_channel(size_t i)
{
    const char *ep = E.endpoints[i];
    return channel(&ep, 1, E.tls);
}

static void expect_ok(int code, const struct grpc_status *st, const char *what)
{
    if (code != GRPC_OK)
        fail_msg("%s: %s (%d) %s [%s]", what, grpc_code_name(st->code), st->code, st->message,
                 st->endpoint);
}

static bool has_url(char *const *v, size_t n, const char *url)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], url) == 0)
            return true;
    return false;
}

static const struct etcd_member *find_member(const struct etcd_member_list *l, uint64_t id)
{
    for (size_t i = 0; i < l->n_members; i++)
        if (l->members[i].id == id)
            return &l->members[i];
    return NULL;
}

static const struct etcd_member *find_named(const struct etcd_member_list *l, const char *name)
{
    for (size_t i = 0; i < l->n_members; i++)
        if (strcmp(l->members[i].name, name) == 0)
            return &l->members[i];
    return NULL;
}

/* etcdctl prints member and cluster IDs as bare JSON numbers, which a double cannot hold:
 * quote the values of these keys before handing the text to cJSON. */
static char *quote_ids(const char *json)
{
    static const char *const keys[] = {"\"ID\":", "\"cluster_id\":", "\"member_id\":"};
    size_t len = strlen(json);
    char *out = malloc(len * 3 + 1);
    size_t o = 0;
    assert_non_null(out);
    for (size_t i = 0; i < len;) {
        size_t klen = 0;
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
            if (strncmp(json + i, keys[k], strlen(keys[k])) == 0)
                klen = strlen(keys[k]);
        if (klen) {
            memcpy(out + o, json + i, klen);
            o += klen;
            i += klen;
            while (json[i] == ' ')
                i++;
            out[o++] = '"';
            while (json[i] >= '0' && json[i] <= '9')
                out[o++] = json[i++];
            out[o++] = '"';
        } else {
            out[o++] = json[i++];
        }
    }
    out[o] = 0;
    return out;
}

static uint64_t json_u64(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v))
        fail_msg("etcdctl json: %s missing", key);
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v->valuestring, &end, 10);
    if (errno || end == v->valuestring || *end)
        fail_msg("etcdctl json: %s = \"%s\" is not a u64", key, v->valuestring);
    return x;
}

/* Compares a JSON string array (may be absent = empty) with ours. */
static void same_urls(const cJSON *m, const char *key, char *const *v, size_t n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, key);
    size_t count = a ? (size_t)cJSON_GetArraySize(a) : 0;
    assert_int_equal(count, n);
    const cJSON *u;
    size_t i = 0;
    cJSON_ArrayForEach(u, a)
    {
        assert_true(cJSON_IsString(u));
        assert_string_equal(u->valuestring, v[i]);
        i++;
    }
}

/* ---- setup ------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    const char *eps = getenv("ETCD_TEST_ENDPOINTS");
    E.cacert = getenv("ETCD_TEST_CACERT");
    E.cert = getenv("ETCD_TEST_CERT");
    E.key = getenv("ETCD_TEST_KEY");
    E.other_cacert = getenv("ETCD_TEST_OTHER_CACERT");
    E.initial_cluster = getenv("ETCD_TEST_INITIAL_CLUSTER");
    if (!eps || !E.cacert || !E.cert || !E.key || !E.initial_cluster) {
        fprintf(stderr, "test_etcd: ETCD_TEST_* not set; run under tests/integration/run.sh\n");
        return -1;
    }
    for (const char *p = eps; *p && E.n < MAX_EPS;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        E.endpoints[E.n] = strndup(p, l);
        if (!E.endpoints[E.n])
            return -1;
        E.n++;
        p += l + (c ? 1 : 0);
    }
    if (E.n < 3)
        return -1;
    char err[256];
    struct tls_files files = {.ca_file = E.cacert, .cert_file = E.cert, .key_file = E.key};
    E.tls = tls_client_new(&files, err, sizeof(err));
    if (!E.tls) {
        fprintf(stderr, "tls_client_new: %s\n", err);
        return -1;
    }
    struct grpc_channel_config cfg = {
        .endpoints = (const char *const *)E.endpoints, .n_endpoints = E.n, .tls = E.tls};
    E.ch = grpc_channel_new(&cfg, err, sizeof(err));
    if (!E.ch) {
        fprintf(stderr, "grpc_channel_new: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    grpc_channel_free(E.ch);
    tls_ctx_free(E.tls);
    for (size_t i = 0; i < E.n; i++)
        free(E.endpoints[i]);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_member_list_matches_etcdctl(void **state)
{
    (void)state;
    struct etcd_member_list l;
    struct grpc_status st;

    expect_ok(etcd_member_list(E.ch, TIMEOUT_MS, &l, &st), &st, "member list");
    char *raw = capture(CLUSTER_SH " etcdctl 0 member list -w json");
    assert_non_null(raw);
    char *json = quote_ids(raw);
    cJSON *doc = cJSON_Parse(json);
    if (!doc)
        fail_msg("etcdctl output is not JSON: %s", raw);
    const cJSON *hdr = cJSON_GetObjectItemCaseSensitive(doc, "header");
    assert_true(json_u64(hdr, "cluster_id") == l.header.cluster_id);
    assert_true(l.header.cluster_id != 0);

    const cJSON *members = cJSON_GetObjectItemCaseSensitive(doc, "members");
    assert_int_equal((size_t)cJSON_GetArraySize(members), l.n_members);
    assert_int_equal(l.n_members, 3);
    const cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        uint64_t id = json_u64(m, "ID");
        const struct etcd_member *ours = find_member(&l, id);
        if (!ours)
            fail_msg("etcdctl member %" PRIx64 " missing from ours", id);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        assert_string_equal(ours->name, cJSON_IsString(name) ? name->valuestring : "");
        same_urls(m, "peerURLs", ours->peer_urls, ours->n_peer_urls);
        same_urls(m, "clientURLs", ours->client_urls, ours->n_client_urls);
        assert_int_equal(ours->is_learner,
                         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "isLearner")));
    }
    /* each member's client URL is one of the test endpoints */
    for (size_t i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "etcd-%zu", i);
        const struct etcd_member *x = find_named(&l, name);
        assert_non_null(x);
        assert_true(has_url(x->client_urls, x->n_client_urls, E.endpoints[i]));
    }
    /* etcd_id_hex prints IDs the way etcdctl (and cluster.sh member-id) do */
    char *hex0 = capture(CLUSTER_SH " member-id 0");
    char buf[17];
    assert_non_null(hex0);
    assert_string_equal(etcd_id_hex(find_named(&l, "etcd-0")->id, buf), hex0);
    free(hex0);

    cJSON_Delete(doc);
    free(json);
    free(raw);
    etcd_member_list_free(&l);
    assert_null(l.members);
}

static void test_status_each_member(void **state)
{
    (void)state;
    struct etcd_member_list l;
    struct grpc_status st;
    uint64_t leader = 0;

    expect_ok(etcd_member_list(E.ch, TIMEOUT_MS, &l, &st), &st, "member list");
    /* the version of the etcd under test (ETCD_BIN_DIR's, else PATH's), as its binary says */
    char *ver =
        capture("bash -c '. " CLUSTER_SH " && etcd --version' | sed -n 's/^etcd Version: //p'");
    assert_non_null(ver);
    ver[strcspn(ver, "\n")] = '\0';
    assert_true(strncmp(ver, "3.", 2) == 0);
    for (size_t i = 0; i < 3; i++) {
        struct grpc_channel *ch = member_channel(i);
        struct etcd_status s;
        expect_ok(etcd_status(ch, TIMEOUT_MS, &s, &st), &st, "status");
        assert_true(s.leader != 0);
        if (leader == 0)
            leader = s.leader;
        assert_true(s.leader == leader); /* all agree (no election in between) */
        assert_non_null(find_member(&l, s.leader));
        assert_string_equal(s.version, ver);
        assert_true(s.db_size > 0);
        assert_true(s.raft_index > 0);
        assert_true(s.raft_term > 0);
        assert_false(s.is_learner);
        assert_int_equal(s.n_errors, 0);
        /* the member that answered is the one we asked */
        const struct etcd_member *self = find_member(&l, s.header.member_id);
        assert_non_null(self);
        assert_true(has_url(self->client_urls, self->n_client_urls, E.endpoints[i]));
        assert_true(s.header.cluster_id == l.header.cluster_id);
        etcd_status_free(&s);
        grpc_channel_free(ch);
    }
    free(ver);
    etcd_member_list_free(&l);
}

static void test_alarm_list_empty(void **state)
{
    (void)state;
    struct etcd_header h;
    struct etcd_alarm *a = (struct etcd_alarm *)&h; /* must be reset to NULL */
    size_t n = 99;
    struct grpc_status st;

    expect_ok(etcd_alarm_list(E.ch, TIMEOUT_MS, &h, &a, &n, &st), &st, "alarm list");
    assert_null(a);
    assert_int_equal(n, 0);
    /* no header check: etcd 3.4 answers an alarm GET with an empty message (no header) */
    assert_string_equal(etcd_alarm_name(ETCD_ALARM_NOSPACE), "NOSPACE");
    assert_string_equal(etcd_alarm_name(42), "UNKNOWN");
}

static void test_put_and_serializable_range(void **state)
{
    (void)state;
    struct grpc_status st;
    struct etcd_header h;
    int64_t count = -1;
    char key[64];

    snprintf(key, sizeof(key), "test/etcd/%ld", (long)getpid());
    expect_ok(etcd_range_serializable(E.ch, key, TIMEOUT_MS, &h, &count, &st), &st, "range");
    assert_int_equal(count, 0);
    expect_ok(etcd_put(E.ch, key, (const uint8_t *)"v", 1, TIMEOUT_MS, &st), &st, "put");
    /* serializable reads are local: the member that took the put (or any member once it has
     * applied it) sees the key; read through the same connection, then every member */
    expect_ok(etcd_range_serializable(E.ch, key, TIMEOUT_MS, &h, &count, &st), &st, "range");
    assert_int_equal(count, 1);
    assert_true(h.revision > 1);
    assert_true(h.member_id != 0);
    for (size_t i = 0; i < 3; i++) {
        struct grpc_channel *ch = member_channel(i);
        long long deadline = clock_mono_ms() + TIMEOUT_MS;
        do {
            expect_ok(etcd_range_serializable(ch, key, TIMEOUT_MS, NULL, &count, &st), &st,
                      "range");
        } while (count != 1 && clock_mono_ms() < deadline && (sleep_ms(50), 1));
        assert_int_equal(count, 1);
        grpc_channel_free(ch);
    }
    expect_ok(etcd_range_serializable(E.ch, "test/etcd/absent", TIMEOUT_MS, NULL, NULL, &st), &st,
              "range absent");
}

/* ---- membership ---------------------------------------------------------------------------- */

struct learner_state {
    uint64_t id; /* non-zero once added */
    bool started;
};
static struct learner_state L;

/* Whatever happened, leave etcd-0..2 and nothing else. */
static int learner_teardown(void **state)
{
    (void)state;
    struct grpc_status st;
    if (L.id) {
        struct etcd_member_list l;
        if (etcd_member_list(E.ch, TIMEOUT_MS, &l, &st) == GRPC_OK) {
            if (find_member(&l, L.id))
                etcd_member_remove(E.ch, L.id, TIMEOUT_MS, NULL, &st);
            etcd_member_list_free(&l);
        }
    }
    run(CLUSTER_SH " kill 3 >/dev/null 2>&1");
    run("rm -rf \"$(" CLUSTER_SH " data-dir 3)\"/member");
    memset(&L, 0, sizeof(L));
    return run(CLUSTER_SH " wait-healthy 0 1 2 >&2") == 0 ? 0 : -1;
}

static void test_learner_add_promote_remove(void **state)
{
    (void)state;
    struct grpc_status st;
    struct etcd_member added;
    struct etcd_member_list l;

    char *peer = capture(CLUSTER_SH " alloc 3");
    assert_non_null(peer);
    const char *urls[] = {peer};
    /* etcd's strict reconfig check refuses changes ("unhealthy cluster") until every voter
     * has been connected for 5 s; it answers before proposing anything, so retrying is safe */
    long long deadline = clock_mono_ms() + PROMOTE_BUDGET_MS;
    int code;
    while ((code = etcd_member_add(E.ch, urls, 1, true, TIMEOUT_MS, &added, &l, &st)) ==
               GRPC_UNAVAILABLE &&
           strstr(st.message, "unhealthy cluster") && clock_mono_ms() < deadline)
        sleep_ms(500);
    expect_ok(code, &st, "member add");
    L.id = added.id;
    assert_true(added.id != 0);
    assert_true(added.is_learner);
    assert_int_equal(added.n_peer_urls, 1);
    assert_string_equal(added.peer_urls[0], peer);
    assert_int_equal(l.n_members, 4);
    const struct etcd_member *in_list = find_member(&l, added.id);
    assert_non_null(in_list);
    assert_string_equal(in_list->name, ""); /* not started yet */
    assert_int_equal(in_list->n_client_urls, 0);
    etcd_member_list_free(&l);

    /* a second learner is refused by etcd (at most one) */
    const char *urls2[] = {"https://127.0.0.1:1"};
    struct etcd_member other;
    assert_int_not_equal(etcd_member_add(E.ch, urls2, 1, true, TIMEOUT_MS, &other, NULL, &st),
                         GRPC_OK);
    assert_non_null(strstr(st.message, "learner"));
    assert_null(other.name);

    assert_int_equal(
        run(CLUSTER_SH " start 3 existing '%s,etcd-3=%s' >&2", E.initial_cluster, peer), 0);
    L.started = true;

    /* promote once it has caught up: etcd says "not in sync" until then */
    deadline = clock_mono_ms() + PROMOTE_BUDGET_MS;
    int backoff = 100, tries = 0;
    for (;;) {
        tries++;
        code = etcd_member_promote(E.ch, added.id, TIMEOUT_MS, &l, &st);
        if (code == GRPC_OK)
            break;
        if (!strstr(st.message, "in sync") || clock_mono_ms() > deadline)
            fail_msg("promote after %d tries: %s %s", tries, grpc_code_name(code), st.message);
        sleep_ms(backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
    fprintf(stderr, "promoted %s after %d tries\n", etcd_id_hex(added.id, (char[17]){0}), tries);
    in_list = find_member(&l, added.id);
    assert_non_null(in_list);
    assert_false(in_list->is_learner);
    etcd_member_list_free(&l);
    /* the new voter serves */
    assert_int_equal(run(CLUSTER_SH " wait-healthy 3 >&2"), 0);
    expect_ok(etcd_member_list(E.ch, TIMEOUT_MS, &l, &st), &st, "member list");
    in_list = find_member(&l, added.id);
    assert_non_null(in_list);
    assert_string_equal(in_list->name, "etcd-3");
    etcd_member_list_free(&l);

    expect_ok(etcd_member_remove(E.ch, added.id, TIMEOUT_MS, &l, &st), &st, "member remove");
    assert_int_equal(l.n_members, 3);
    assert_null(find_member(&l, added.id));
    etcd_member_list_free(&l);
    L.id = 0;
    etcd_member_free(&added);
    free(peer);
}

static void test_remove_unknown(void **state)
{
    (void)state;
    struct grpc_status st;
    struct etcd_member_list l;
    assert_int_equal(etcd_member_remove(E.ch, 0x1234abcdULL, TIMEOUT_MS, &l, &st), GRPC_NOT_FOUND);
    assert_non_null(strstr(st.message, "member not found"));
    assert_false(st.transport);
    assert_int_equal(l.n_members, 0);
    assert_int_equal(etcd_member_promote(E.ch, 0x1234abcdULL, TIMEOUT_MS, NULL, &st),
                     GRPC_NOT_FOUND);
}

/* ---- snapshot ------------------------------------------------------------------------------ */

struct snap_sink {
    EVP_MD_CTX *md;
    uint64_t bytes, total;
    int calls;
};

static int snap_fn(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    struct snap_sink *k = arg;
    k->calls++;
    k->total = total;
    k->bytes += len;
    return EVP_DigestUpdate(k->md, blob, len) == 1 ? 0 : 1;
}

static void test_snapshot(void **state)
{
    (void)state;
    struct grpc_status st;
    uint8_t *value = malloc(SNAP_VALUE);
    assert_non_null(value);
    for (size_t i = 0; i < SNAP_VALUE; i++)
        value[i] = (uint8_t)(i * 31 + 7);
    for (int i = 0; i < SNAP_KEYS; i++) {
        char key[64];
        snprintf(key, sizeof(key), "test/snapshot/%04d", i);
        value[0] = (uint8_t)i; /* distinct values, little compression chance */
        expect_ok(etcd_put(E.ch, key, value, SNAP_VALUE, TIMEOUT_MS, &st), &st, "put");
    }
    free(value);

    struct snap_sink k = {.md = EVP_MD_CTX_new()};
    assert_non_null(k.md);
    assert_int_equal(EVP_DigestInit_ex(k.md, EVP_sha256(), NULL), 1);
    uint8_t digest[32], mine[32];
    unsigned mine_len = 0;
    expect_ok(etcd_snapshot(E.ch, 60000, 10000, snap_fn, &k, digest, &st), &st, "snapshot");
    assert_int_equal(EVP_DigestFinal_ex(k.md, mine, &mine_len), 1);
    EVP_MD_CTX_free(k.md);
    assert_true(k.total >= (uint64_t)SNAP_KEYS * SNAP_VALUE);
    /* the announced size is the db file size that member reports (nothing writes between) */
    struct etcd_status s;
    expect_ok(etcd_status(E.ch, TIMEOUT_MS, &s, &st), &st, "status");
    assert_int_equal(s.db_size, (int64_t)k.total);
    etcd_status_free(&s);
    assert_true(k.bytes == k.total);
    assert_true(k.calls > 1);
    assert_memory_equal(digest, mine, 32);
    fprintf(stderr, "snapshot: %" PRIu64 " bytes in %d blobs\n", k.total, k.calls);
}

static int cancel_after_one(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    (void)total;
    (void)blob;
    (void)len;
    int *calls = arg;
    return ++*calls >= 1;
}

static void test_snapshot_cancel(void **state)
{
    (void)state;
    struct grpc_status st;
    uint8_t digest[32];
    int calls = 0;
    assert_int_equal(etcd_snapshot(E.ch, 60000, 10000, cancel_after_one, &calls, digest, &st),
                     GRPC_CANCELLED);
    assert_int_equal(calls, 1);
    assert_non_null(strstr(st.message, "cancelled"));
    uint8_t zero[32] = {0};
    assert_memory_equal(digest, zero, 32);
    struct etcd_member_list l;
    expect_ok(etcd_member_list(E.ch, TIMEOUT_MS, &l, &st), &st, "member list after cancel");
    etcd_member_list_free(&l);
}

/* ---- deadlines, failover, TLS -----------------------------------------------------------------
 */

static int resume_2(void **state)
{
    (void)state;
    run(CLUSTER_SH " resume 2 >/dev/null 2>&1");
    return run(CLUSTER_SH " wait-healthy 0 1 2 >&2") == 0 ? 0 : -1;
}

static void test_deadline_paused_member(void **state)
{
    (void)state;
    struct grpc_status st;
    struct etcd_member_list l;
    struct grpc_channel *ch = member_channel(2);

    expect_ok(etcd_member_list(ch, TIMEOUT_MS, &l, &st), &st, "member list before pause");
    etcd_member_list_free(&l);
    assert_int_equal(run(CLUSTER_SH " pause 2"), 0);
    long long t0 = clock_mono_ms();
    int code = etcd_member_list(ch, 1000, &l, &st);
    long long took = clock_mono_ms() - t0;
    run(CLUSTER_SH " resume 2");
    assert_int_equal(code, GRPC_DEADLINE_EXCEEDED);
    assert_int_equal(l.n_members, 0);
    assert_true(took < 20000); /* generous: only proves the call did not hang */
    /* after the member resumes the channel recovers (a new connection if needed) */
    long long deadline = clock_mono_ms() + TIMEOUT_MS;
    while ((code = etcd_member_list(ch, TIMEOUT_MS, &l, &st)) != GRPC_OK &&
           clock_mono_ms() < deadline)
        sleep_ms(200);
    expect_ok(code, &st, "member list after resume");
    etcd_member_list_free(&l);
    grpc_channel_free(ch);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd); /* nothing listens there now */
    return ntohs(a.sin_port);
}

static void test_failover_first_endpoint_down(void **state)
{
    (void)state;
    char dead[64];
    snprintf(dead, sizeof(dead), "https://127.0.0.1:%d", closed_port());
    const char *eps[] = {dead, E.endpoints[1]};
    struct grpc_channel *ch = channel(eps, 2, E.tls);
    struct grpc_status st;
    struct etcd_member_list l;

    expect_ok(etcd_member_list(ch, TIMEOUT_MS, &l, &st), &st, "member list with failover");
    assert_int_equal(l.n_members, 3);
    /* the connection is to the second endpoint (compare ports: the format is grpc.c's) */
    const char *used = grpc_channel_endpoint(ch);
    assert_non_null(used);
    assert_non_null(strstr(used, strrchr(E.endpoints[1], ':')));
    assert_null(strstr(used, strrchr(dead, ':')));
    etcd_member_list_free(&l);

    /* only the dead endpoint: UNAVAILABLE, a transport error naming it */
    const char *only_dead[] = {dead};
    struct grpc_channel *ch2 = channel(only_dead, 1, E.tls);
    assert_int_equal(etcd_member_list(ch2, TIMEOUT_MS, &l, &st), GRPC_UNAVAILABLE);
    assert_true(st.transport);
    fprintf(stderr, "dead endpoint: %s [%s]\n", st.message, st.endpoint);
    grpc_channel_free(ch2);
    grpc_channel_free(ch);
}

static void test_wrong_ca(void **state)
{
    (void)state;
    if (!E.other_cacert)
        skip();
    char err[256];
    struct tls_files files = {.ca_file = E.other_cacert, .cert_file = E.cert, .key_file = E.key};
    struct tls_ctx *tls = tls_client_new(&files, err, sizeof(err));
    assert_non_null(tls);
    struct grpc_channel *ch = channel((const char *const *)E.endpoints, 1, tls);
    struct grpc_status st;
    struct etcd_status s;
    assert_int_equal(etcd_status(ch, TIMEOUT_MS, &s, &st), GRPC_UNAVAILABLE);
    assert_true(st.transport);
    if (!strstr(st.message, "certificate") && !strstr(st.message, "verify"))
        fail_msg("unclear TLS error: %s", st.message);
    assert_int_equal(s.db_size, 0);
    grpc_channel_free(ch);
    tls_ctx_free(tls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_list_matches_etcdctl),
        cmocka_unit_test(test_status_each_member),
        cmocka_unit_test(test_alarm_list_empty),
        cmocka_unit_test(test_put_and_serializable_range),
        cmocka_unit_test(test_remove_unknown),
        cmocka_unit_test_teardown(test_learner_add_promote_remove, learner_teardown),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_snapshot_cancel),
        cmocka_unit_test_teardown(test_deadline_paused_member, resume_2),
        cmocka_unit_test(test_failover_first_endpoint_down),
        cmocka_unit_test(test_wrong_ca),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
