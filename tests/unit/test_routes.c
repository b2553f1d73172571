/* test_routes.c - the agent's handler driven with a cache the test fills (no etcd, no server):
 * routing, methods (404, 405 + Allow, HEAD), health verdicts and bodies, verbose text,
 * /members verdicts, /status, /metrics, and the request counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "cache.h"
#include "clock.h"
#include "routes.h"

struct fixture {
    struct cache *cache;
    struct routes *routes;
    int64_t now;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->now = clock_mono_ms();
    f->cache = cache_new(f->now - 1000);
    struct routes_config cfg = {
        .cache = f->cache,
        .health = {.interval_ms = 1000, .livez_intervals = 30, .stale_ms = 10000},
        .version = "test-version",
        .name = "etcd-0",
    };
    f->routes = routes_new(&cfg);
    *state = f;
    return f->cache && f->routes ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    routes_free(f->routes);
    cache_free(f->cache);
    free(f);
    return 0;
}

struct answer {
    struct http_response resp;
    cJSON *json; /* parsed body when JSON */
};

static void answer_free(struct answer *a)
{
    free(a->resp.body);
    cJSON_Delete(a->json);
    memset(a, 0, sizeof(*a));
}

static void call(struct fixture *f, const char *method, const char *path, const char *query,
                 struct answer *a)
{
    memset(a, 0, sizeof(*a));
    struct http_request req = {.method = method,
                               .path = path,
                               .query = query ? query : "",
                               .version = 11,
                               .peer = "127.0.0.1:1"};
    routes_handle(f->routes, &req, &a->resp);
    routes_on_done(f->routes, &req, a->resp.status, true); /* as the server does */
    assert_true(a->resp.status >= 200);
    assert_non_null(a->resp.content_type);
    /* a borrowed body (cached probe answers) is only valid until the next call */
    const char *body = a->resp.body ? a->resp.body : a->resp.body_ref;
    if (strcmp(a->resp.content_type, "application/json") == 0) {
        assert_non_null(body);
        assert_true(a->resp.body_len > 0);
        assert_int_equal(body[a->resp.body_len - 1], '\n');
        a->json = cJSON_ParseWithLength(body, a->resp.body_len);
        if (!a->json)
            fail_msg("invalid JSON body: %.*s", (int)a->resp.body_len, body);
    }
}

static const char *header(const struct answer *a, const char *name)
{
    for (size_t i = 0; i < a->resp.n_extra; i++)
        if (strcmp(a->resp.extra[i].name, name) == 0)
            return a->resp.extra[i].value;
    return NULL;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        fail_msg("%s is not a string", key);
    return v->valuestring;
}

static const cJSON *jget(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        fail_msg("%s missing", key);
    return v;
}

/* A local observation that passes every readiness check. */
static void healthy_local(struct cache_local *l, int64_t now)
{
    memset(l, 0, sizeof(*l));
    l->probed_at_ms = l->answered_at_ms = l->status_at_ms = now;
    l->took_ms = 3;
    l->status_ok = l->have_status = l->range_ok = l->alarms_ok = true;
    l->status.cluster_id = 0xabcdef;
    l->status.member_id = 0x8e9e05c52164694d;
    l->status.leader = 0x8e9e05c52164694d;
    l->status.revision = 17;
    l->status.raft_index = 1234;
    l->status.raft_term = 3;
    l->status.db_size = 20480;
    l->status.db_size_in_use = 16384;
    (void)snprintf(l->status.version, sizeof(l->status.version), "3.4.23");
}

static void publish_local(struct fixture *f, const struct cache_local *l)
{
    assert_int_equal(cache_publish_local(f->cache, l), 0);
}

static uint64_t http_count(struct fixture *f, const char *path, int code)
{
    struct cache_counters k;
    cache_counters(f->cache, &k);
    for (size_t i = 0; i < k.n_http; i++)
        if (k.http[i].code == code && strcmp(k.http[i].path, path) == 0)
            return k.http[i].count;
    return 0;
}

/* ---- routing ---------------------------------------------------------------------------- */

static void test_unknown_path_404(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    call(f, "GET", "/nope", NULL, &a);
    assert_int_equal(a.resp.status, 404);
    assert_string_equal(jstr(a.json, "error"), "not found");
    answer_free(&a);
    call(f, "GET", "/readyz/extra", NULL, &a); /* exact routes do not match longer paths */
    assert_int_equal(a.resp.status, 404);
    answer_free(&a);
    assert_int_equal(http_count(f, "other", 404), 2);
    routes_on_done(f->routes, NULL, 400, true); /* the server's own answer to garbage */
    assert_int_equal(http_count(f, "other", 400), 1);
}

static void test_wrong_method_405(void **state)
{
    struct fixture *f = *state;
    static const char *const paths[] = {"/livez",   "/readyz", "/healthz",
                                        "/members", "/status", "/metrics"};
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        struct answer a;
        call(f, "POST", paths[i], NULL, &a);
        assert_int_equal(a.resp.status, 405);
        assert_string_equal(header(&a, "allow"), "GET, HEAD");
        assert_string_equal(jstr(a.json, "error"), "method not allowed");
        answer_free(&a);
        assert_int_equal(http_count(f, paths[i], 405), 1);
    }
    struct answer a;
    call(f, "DELETE", "/readyz", NULL, &a);
    assert_int_equal(a.resp.status, 405);
    answer_free(&a);
}

static void test_head_like_get(void **state)
{
    struct fixture *f = *state;
    struct cache_local l;
    healthy_local(&l, clock_mono_ms());
    publish_local(f, &l);
    struct answer g, h;
    call(f, "GET", "/readyz", NULL, &g);
    call(f, "HEAD", "/readyz", NULL, &h);
    /* The server drops HEAD bodies; the handler still sets one so Content-Length is right. */
    assert_int_equal(h.resp.status, 200);
    assert_int_equal(h.resp.status, g.resp.status);
    assert_string_equal(h.resp.content_type, g.resp.content_type);
    assert_true(h.resp.body_len > 0);
    answer_free(&g);
    answer_free(&h);
}

static void dummy_route(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    (void)http_response_set_body(resp, 200, "text/plain", arg, strlen(arg));
}

static void silent_route(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)arg;
    (void)req;
    (void)resp;
}

static void test_routes_add(void **state)
{
    struct fixture *f = *state;
    struct route a = {
        .path = "/snapshots", .methods = "GET, POST", .fn = dummy_route, .arg = "list"};
    struct route b = {.path = "/snapshots/",
                      .prefix = true,
                      .methods = "GET, HEAD",
                      .fn = dummy_route,
                      .arg = "one"};
    struct route c = {.path = "/snapshots/special/",
                      .prefix = true,
                      .methods = "GET",
                      .fn = dummy_route,
                      .arg = "special"};
    struct route d = {.path = "/broken", .methods = "GET", .fn = silent_route};
    assert_int_equal(routes_add(f->routes, &a), 0);
    assert_int_equal(routes_add(f->routes, &b), 0);
    assert_int_equal(routes_add(f->routes, &c), 0);
    assert_int_equal(routes_add(f->routes, &d), 0);
    assert_int_equal(routes_add(f->routes, &a), -EEXIST);
    struct route dup_builtin = {.path = "/readyz", .methods = "GET", .fn = dummy_route};
    assert_int_equal(routes_add(f->routes, &dup_builtin), -EEXIST);

    struct answer r;
    call(f, "POST", "/snapshots", NULL, &r);
    assert_int_equal(r.resp.status, 200);
    assert_memory_equal(r.resp.body, "list", 4);
    answer_free(&r);
    call(f, "GET", "/snapshots/2026-rev1.db", NULL, &r);
    assert_memory_equal(r.resp.body, "one", 3);
    answer_free(&r);
    call(f, "GET", "/snapshots/special/x", NULL, &r); /* the longest prefix wins */
    assert_memory_equal(r.resp.body, "special", 7);
    answer_free(&r);
    call(f, "HEAD", "/snapshots/special/x", NULL, &r); /* HEAD rides on GET */
    assert_int_equal(r.resp.status, 200);
    answer_free(&r);
    call(f, "DELETE", "/snapshots/x", NULL, &r);
    assert_int_equal(r.resp.status, 405);
    assert_string_equal(header(&r, "allow"), "GET, HEAD");
    answer_free(&r);
    call(f, "GET", "/broken", NULL, &r);
    assert_int_equal(r.resp.status, 500);
    answer_free(&r);
    /* Prefix routes count under their prefix: the label set stays bounded. */
    assert_int_equal(http_count(f, "/snapshots/", 200), 1);
    assert_int_equal(http_count(f, "/snapshots/", 405), 1);

    struct route more = {.methods = "GET", .fn = dummy_route};
    char paths[ROUTES_MAX][16];
    int rc = 0;
    for (int i = 0; i < ROUTES_MAX && rc == 0; i++) {
        (void)snprintf(paths[i], sizeof(paths[i]), "/x%d", i);
        more.path = paths[i];
        rc = routes_add(f->routes, &more);
    }
    assert_int_equal(rc, -ENOSPC);
}

/* ---- readiness -------------------------------------------------------------------------- */

static void test_readyz_no_observation(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    call(f, "GET", "/readyz", NULL, &a);
    assert_int_equal(a.resp.status, 503);
    assert_string_equal(jstr(a.json, "status"), "failing");
    assert_string_equal(jstr(jget(a.json, "checks"), "status"), "failed: no observation yet");
    assert_true(cJSON_IsNull(jget(a.json, "age_ms")));
    assert_string_equal(header(&a, "cache-control"), "no-store");
    answer_free(&a);
}

static void test_readyz_healthy(void **state)
{
    struct fixture *f = *state;
    struct cache_local l;
    healthy_local(&l, clock_mono_ms() - 250);
    publish_local(f, &l);
    static const char *const paths[] = {"/readyz", "/healthz"};
    for (size_t i = 0; i < 2; i++) {
        struct answer a;
        call(f, "GET", paths[i], NULL, &a);
        assert_int_equal(a.resp.status, 200);
        assert_string_equal(jstr(a.json, "status"), "ok");
        const cJSON *checks = jget(a.json, "checks");
        assert_int_equal(cJSON_GetArraySize(checks), 5);
        static const char *const names[] = {"status", "serializable_read", "leader", "learner",
                                            "alarm"};
        for (size_t j = 0; j < 5; j++)
            assert_string_equal(jstr(checks, names[j]), "ok");
        double age = jget(a.json, "age_ms")->valuedouble;
        assert_true(age >= 250 && age < 60000);
        assert_string_equal(jstr(a.json, "member"), "etcd-0");
        answer_free(&a);
    }
    assert_int_equal(http_count(f, "/readyz", 200), 1);
    assert_int_equal(http_count(f, "/healthz", 200), 1);
}

/* Probe bodies are cached and only age_ms's digits change between renderings: ages of every
 * width, up and down, give exactly the body a fresh rendering would. */
static void test_readyz_cached_age(void **state)
{
    struct fixture *f = *state;
    static const int64_t ages[] = {5, 1234, 7, 98, 4321, 0, 100}; /* stale after 10 s */
    for (size_t i = 0; i < ARRAY_SIZE(ages); i++) {
        struct cache_local l;
        healthy_local(&l, clock_mono_ms() - ages[i]);
        publish_local(f, &l);
        for (int rep = 0; rep < 2; rep++) { /* the second answer comes from the cache */
            struct answer a;
            call(f, "GET", rep ? "/healthz" : "/readyz", NULL, &a);
            assert_int_equal(a.resp.status, 200);
            double age = jget(a.json, "age_ms")->valuedouble;
            if (age < (double)ages[i] || age > (double)ages[i] + 2000)
                fail_msg("age %f for %lld", age, (long long)ages[i]);
            /* the whole body, byte for byte, as cJSON renders it */
            char want[512];
            int n =
                snprintf(want, sizeof(want),
                         "{\"status\":\"ok\",\"checks\":{\"status\":\"ok\",\"serializable_read\":"
                         "\"ok\",\"leader\":\"ok\",\"learner\":\"ok\",\"alarm\":\"ok\"},"
                         "\"age_ms\":%.0f,\"member\":\"etcd-0\"}\n",
                         age);
            const char *body = a.resp.body ? a.resp.body : a.resp.body_ref;
            assert_int_equal(a.resp.body_len, (size_t)n);
            assert_memory_equal(body, want, (size_t)n);
            answer_free(&a);
        }
    }
}

struct ready_case {
    const char *name;
    void (*spoil)(struct cache_local *l, int64_t now);
    const char *check;
    const char *reason;
};

static void spoil_leader(struct cache_local *l, int64_t now)
{
    (void)now;
    l->status.leader = 0;
}
static void spoil_learner(struct cache_local *l, int64_t now)
{
    (void)now;
    l->status.is_learner = true;
}
static void spoil_alarm(struct cache_local *l, int64_t now)
{
    (void)now;
    l->alarms[0].type = 1;
    l->alarms[0].member_id = 0x1f;
    l->n_alarms = 1;
}
static void spoil_alarm_call(struct cache_local *l, int64_t now)
{
    (void)now;
    l->alarms_ok = false;
    (void)snprintf(l->alarm_error, sizeof(l->alarm_error), "alarm list: DEADLINE_EXCEEDED");
}
static void spoil_range(struct cache_local *l, int64_t now)
{
    (void)now;
    l->range_ok = false;
    (void)snprintf(l->range_error, sizeof(l->range_error), "range: UNAVAILABLE: refused");
}
static void spoil_status(struct cache_local *l, int64_t now)
{
    (void)now;
    l->status_ok = false;
    (void)snprintf(l->status_error, sizeof(l->status_error), "status: UNAVAILABLE: refused");
}
static void spoil_stale(struct cache_local *l, int64_t now)
{
    l->probed_at_ms = now - 20000;
}

static void test_readyz_failing_checks(void **state)
{
    struct fixture *f = *state;
    static const struct ready_case cases[] = {
        {"leader", spoil_leader, "leader", "failed: no leader"},
        {"learner", spoil_learner, "learner", "failed: member is a learner"},
        {"alarm", spoil_alarm, "alarm", "failed: NOSPACE on member 1f"},
        {"alarm call", spoil_alarm_call, "alarm", "failed: alarm list: DEADLINE_EXCEEDED"},
        {"range", spoil_range, "serializable_read", "failed: range: UNAVAILABLE: refused"},
        {"status", spoil_status, "status", "failed: status: UNAVAILABLE: refused"},
        {"stale", spoil_stale, "status", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int64_t now = clock_mono_ms();
        struct cache_local l;
        healthy_local(&l, now);
        cases[i].spoil(&l, now);
        publish_local(f, &l);
        struct answer a;
        call(f, "GET", "/readyz", NULL, &a);
        if (a.resp.status != 503)
            fail_msg("case %s: status %d", cases[i].name, a.resp.status);
        assert_string_equal(jstr(a.json, "status"), "failing");
        const char *got = jstr(jget(a.json, "checks"), cases[i].check);
        if (cases[i].reason)
            assert_string_equal(got, cases[i].reason);
        else
            assert_true(strncmp(got, "failed: observation is stale", 28) == 0);
        answer_free(&a);
    }
    /* A failed Status also fails leader and learner: they cannot be known. */
    struct cache_local l;
    healthy_local(&l, clock_mono_ms());
    spoil_status(&l, 0);
    publish_local(f, &l);
    struct answer a;
    call(f, "GET", "/healthz", NULL, &a);
    assert_string_equal(jstr(jget(a.json, "checks"), "leader"), "failed: unknown: no status");
    assert_string_equal(jstr(jget(a.json, "checks"), "serializable_read"), "ok");
    answer_free(&a);
}

static void test_readyz_verbose(void **state)
{
    struct fixture *f = *state;
    struct cache_local l;
    healthy_local(&l, clock_mono_ms());
    publish_local(f, &l);
    struct answer a;
    call(f, "GET", "/readyz", "verbose", &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(a.resp.content_type, "text/plain; charset=utf-8");
    static const char ok_text[] = "[+]status ok\n[+]serializable_read ok\n[+]leader ok\n"
                                  "[+]learner ok\n[+]alarm ok\nreadyz check passed\n";
    assert_int_equal(a.resp.body_len, sizeof(ok_text) - 1);
    assert_memory_equal(a.resp.body, ok_text, sizeof(ok_text) - 1);
    answer_free(&a);

    l.status.leader = 0;
    publish_local(f, &l);
    call(f, "GET", "/healthz", "verbose=1&x=y", &a);
    assert_int_equal(a.resp.status, 503);
    static const char bad_text[] = "[+]status ok\n[+]serializable_read ok\n"
                                   "[-]leader failed: no leader\n[+]learner ok\n[+]alarm ok\n"
                                   "healthz check failed\n";
    assert_int_equal(a.resp.body_len, sizeof(bad_text) - 1);
    assert_memory_equal(a.resp.body, bad_text, sizeof(bad_text) - 1);
    answer_free(&a);

    call(f, "GET", "/livez", "verbose", &a);
    assert_int_equal(a.resp.status, 200);
    static const char live_text[] = "[+]agent ok\n[+]local_member ok\nlivez check passed\n";
    assert_memory_equal(a.resp.body, live_text, sizeof(live_text) - 1);
    answer_free(&a);
}

/* ---- liveness --------------------------------------------------------------------------- */

static void test_livez(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    /* Just started, nothing answered yet: within the startup grace. */
    call(f, "GET", "/livez", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(jstr(a.json, "status"), "ok");
    assert_string_equal(jstr(jget(a.json, "checks"), "agent"), "ok");
    answer_free(&a);

    /* Quorum lost: no leader, reads failing, but the member answers Status: still live. */
    int64_t now = clock_mono_ms();
    struct cache_local l;
    healthy_local(&l, now);
    l.status.leader = 0;
    l.range_ok = false;
    publish_local(f, &l);
    call(f, "GET", "/livez", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    answer_free(&a);
    call(f, "GET", "/readyz", NULL, &a);
    assert_int_equal(a.resp.status, 503);
    answer_free(&a);

    /* Silent for 29 intervals: live. For 31: not live. */
    l.answered_at_ms = now - 29000;
    l.status_ok = false;
    publish_local(f, &l);
    call(f, "GET", "/livez", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    answer_free(&a);
    l.answered_at_ms = now - 31000;
    publish_local(f, &l);
    call(f, "GET", "/livez", NULL, &a);
    assert_int_equal(a.resp.status, 503);
    assert_string_equal(jstr(a.json, "status"), "failing");
    assert_true(
        strncmp(jstr(jget(a.json, "checks"), "local_member"), "failed: no answer for", 21) == 0);
    answer_free(&a);
}

static void test_livez_never_answered(void **state)
{
    (void)state;
    int64_t now = clock_mono_ms();
    struct cache *c = cache_new(now - 40000);
    struct routes_config cfg = {
        .cache = c, .health = {.interval_ms = 1000, .livez_intervals = 30, .stale_ms = 10000}};
    struct routes *r = routes_new(&cfg);
    struct fixture f = {.cache = c, .routes = r, .now = now};
    struct answer a;
    call(&f, "GET", "/livez", NULL, &a);
    assert_int_equal(a.resp.status, 503);
    assert_true(strncmp(jstr(jget(a.json, "checks"), "local_member"),
                        "failed: no answer since the agent started", 41) == 0);
    answer_free(&a);
    routes_free(r);
    cache_free(c);
}

/* ---- /members --------------------------------------------------------------------------- */

static void member(struct cache_cluster *cl, size_t i, uint64_t id, const char *name, bool healthy,
                   uint64_t leader)
{
    struct cache_member *m = &cl->members[i];
    memset(m, 0, sizeof(*m));
    m->id = id;
    (void)snprintf(m->name, sizeof(m->name), "%s", name);
    (void)snprintf(m->peer_urls[0], CACHE_MAX_URL, "https://127.0.0.1:%zu", 2380 + 10 * i);
    m->n_peer_urls = 1;
    if (*name) {
        (void)snprintf(m->client_urls[0], CACHE_MAX_URL, "https://127.0.0.1:%zu", 2379 + 10 * i);
        m->n_client_urls = 1;
        m->started = true;
    }
    m->healthy = healthy;
    m->answered = healthy;
    m->took_ms = healthy ? 2 : 1000;
    if (healthy) {
        m->status.leader = leader;
        m->status.db_size = 4096 * (int64_t)(i + 1);
        m->status.raft_index = 100 + i;
        (void)snprintf(m->status.version, sizeof(m->status.version), "3.4.23");
    } else {
        (void)snprintf(m->error, sizeof(m->error), "status: UNAVAILABLE: connection refused");
    }
    if (i >= cl->n_members)
        cl->n_members = i + 1;
}

static const cJSON *member_named(const cJSON *members, const char *name)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, members) if (strcmp(jstr(m, "name"), name) == 0) return m;
    fail_msg("member %s missing", name);
    return NULL;
}

static void test_members_none_yet(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    call(f, "GET", "/members", NULL, &a);
    assert_int_equal(a.resp.status, 503);
    assert_int_equal(cJSON_GetArraySize(jget(a.json, "members")), 0);
    assert_false(cJSON_IsTrue(jget(jget(a.json, "verdict"), "quorum")));
    answer_free(&a);
}

static void test_members_one_failing(void **state)
{
    struct fixture *f = *state;
    static struct cache_cluster cl;
    memset(&cl, 0, sizeof(cl));
    cl.probed_at_ms = clock_mono_ms();
    cl.ok = true;
    cl.took_ms = 7;
    member(&cl, 0, 0xa1, "etcd-0", true, 0xb2);
    member(&cl, 1, 0xb2, "etcd-1", true, 0xb2);
    member(&cl, 2, 0xc3, "etcd-2", false, 0);
    assert_int_equal(cache_publish_cluster(f->cache, &cl), 0);

    struct answer a;
    call(f, "GET", "/members", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_true(cJSON_IsTrue(jget(a.json, "ok")));
    assert_true(cJSON_IsNull(jget(a.json, "error")));
    assert_string_equal(jstr(a.json, "leader"), "b2");
    const cJSON *members = jget(a.json, "members");
    assert_int_equal(cJSON_GetArraySize(members), 3);
    const cJSON *m1 = member_named(members, "etcd-1");
    assert_string_equal(jstr(m1, "id"), "b2");
    assert_true(cJSON_IsTrue(jget(m1, "leader")));
    assert_true(cJSON_IsTrue(jget(m1, "healthy")));
    assert_true(cJSON_IsTrue(jget(m1, "started")));
    assert_false(cJSON_IsTrue(jget(m1, "learner")));
    assert_int_equal(jget(m1, "db_size")->valueint, 8192);
    assert_int_equal(jget(m1, "raft_index")->valueint, 101);
    assert_int_equal(jget(m1, "took_ms")->valueint, 2);
    assert_string_equal(cJSON_GetArrayItem(jget(m1, "peer_urls"), 0)->valuestring,
                        "https://127.0.0.1:2390");
    assert_string_equal(cJSON_GetArrayItem(jget(m1, "client_urls"), 0)->valuestring,
                        "https://127.0.0.1:2389");
    assert_true(cJSON_IsNull(jget(m1, "error")));
    const cJSON *m2 = member_named(members, "etcd-2");
    assert_false(cJSON_IsTrue(jget(m2, "healthy")));
    assert_false(cJSON_IsTrue(jget(m2, "leader")));
    assert_string_equal(jstr(m2, "error"), "status: UNAVAILABLE: connection refused");
    assert_true(cJSON_IsNull(jget(m2, "db_size")));
    const cJSON *v = jget(a.json, "verdict");
    assert_true(cJSON_IsTrue(jget(v, "quorum")));
    assert_true(cJSON_IsTrue(jget(v, "recoverable")));
    assert_int_equal(cJSON_GetArraySize(jget(v, "failing")), 1);
    assert_string_equal(cJSON_GetArrayItem(jget(v, "failing"), 0)->valuestring, "etcd-2");
    answer_free(&a);

    /* Two failing: no quorum, not recoverable by replacing one. */
    member(&cl, 1, 0xb2, "etcd-1", false, 0);
    assert_int_equal(cache_publish_cluster(f->cache, &cl), 0);
    call(f, "GET", "/members", NULL, &a);
    v = jget(a.json, "verdict");
    assert_false(cJSON_IsTrue(jget(v, "quorum")));
    assert_false(cJSON_IsTrue(jget(v, "recoverable")));
    assert_int_equal(cJSON_GetArraySize(jget(v, "failing")), 2);
    answer_free(&a);

    /* All healthy plus an unstarted learner: the learner is the one failing member. It is
     * named by ID, and quorum counts voters only. */
    member(&cl, 1, 0xb2, "etcd-1", true, 0xb2);
    member(&cl, 2, 0xc3, "etcd-2", true, 0xb2);
    member(&cl, 3, 0xd4, "", false, 0);
    cl.members[3].is_learner = true;
    assert_int_equal(cache_publish_cluster(f->cache, &cl), 0);
    call(f, "GET", "/members", NULL, &a);
    v = jget(a.json, "verdict");
    assert_true(cJSON_IsTrue(jget(v, "quorum")));
    assert_int_equal(jget(v, "voters")->valueint, 3);
    assert_string_equal(cJSON_GetArrayItem(jget(v, "failing"), 0)->valuestring, "d4");
    const cJSON *m3 = member_named(jget(a.json, "members"), "");
    assert_false(cJSON_IsTrue(jget(m3, "started")));
    assert_true(cJSON_IsTrue(jget(m3, "learner")));
    assert_int_equal(cJSON_GetArraySize(jget(m3, "client_urls")), 0);
    answer_free(&a);

    /* MemberList failed: the table is not trusted for a recovery decision. */
    member(&cl, 3, 0xd4, "etcd-3", true, 0xb2);
    cl.n_members = 3;
    member(&cl, 2, 0xc3, "etcd-2", false, 0);
    cl.ok = false;
    (void)snprintf(cl.error, sizeof(cl.error), "member list: DEADLINE_EXCEEDED");
    assert_int_equal(cache_publish_cluster(f->cache, &cl), 0);
    call(f, "GET", "/members", NULL, &a);
    assert_string_equal(jstr(a.json, "error"), "member list: DEADLINE_EXCEEDED");
    assert_false(cJSON_IsTrue(jget(jget(a.json, "verdict"), "recoverable")));
    answer_free(&a);
}

/* A full table is larger than the stack buffer JSON is first rendered into. */
static void test_members_large_table(void **state)
{
    struct fixture *f = *state;
    static struct cache_cluster cl;
    memset(&cl, 0, sizeof(cl));
    cl.probed_at_ms = clock_mono_ms();
    cl.ok = true;
    cl.truncated = true;
    for (size_t i = 0; i < CACHE_MAX_MEMBERS; i++) {
        member(&cl, i, 0x1000 + i, "etcd-long-member-name", true, 0x1000);
        for (size_t u = 0; u < CACHE_MAX_URLS; u++) {
            (void)snprintf(cl.members[i].peer_urls[u], CACHE_MAX_URL,
                           "https://%0200zu.example:2380", u);
            (void)snprintf(cl.members[i].client_urls[u], CACHE_MAX_URL,
                           "https://%0200zu.example:2379", u);
        }
        cl.members[i].n_peer_urls = cl.members[i].n_client_urls = CACHE_MAX_URLS;
    }
    assert_int_equal(cache_publish_cluster(f->cache, &cl), 0);
    struct answer a;
    call(f, "GET", "/members", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_true(a.resp.body_len > 16 * 1024);
    assert_int_equal(cJSON_GetArraySize(jget(a.json, "members")), CACHE_MAX_MEMBERS);
    assert_true(cJSON_IsTrue(jget(a.json, "truncated")));
    assert_false(cJSON_IsTrue(jget(jget(a.json, "verdict"), "recoverable")));
    answer_free(&a);
}

/* ---- /status and /metrics --------------------------------------------------------------- */

static void test_status(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    call(f, "GET", "/status", NULL, &a);
    assert_int_equal(a.resp.status, 503);
    assert_true(cJSON_IsNull(jget(a.json, "status")));
    answer_free(&a);

    struct cache_local l;
    healthy_local(&l, clock_mono_ms());
    l.alarms[0].type = 2;
    l.alarms[0].member_id = 0xff;
    l.n_alarms = 1;
    publish_local(f, &l);
    call(f, "GET", "/status", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_true(cJSON_IsTrue(jget(a.json, "ok")));
    const cJSON *st = jget(a.json, "status");
    assert_string_equal(jstr(st, "member_id"), "8e9e05c52164694d");
    assert_string_equal(jstr(st, "leader"), "8e9e05c52164694d");
    assert_string_equal(jstr(st, "cluster_id"), "abcdef");
    assert_string_equal(jstr(st, "version"), "3.4.23");
    assert_int_equal(jget(st, "raft_index")->valueint, 1234);
    assert_int_equal(jget(st, "db_size")->valueint, 20480);
    assert_int_equal(jget(st, "revision")->valueint, 17);
    assert_false(cJSON_IsTrue(jget(st, "is_learner")));
    const cJSON *al = cJSON_GetArrayItem(jget(a.json, "alarms"), 0);
    assert_string_equal(jstr(al, "alarm"), "CORRUPT");
    assert_string_equal(jstr(al, "member_id"), "ff");
    assert_null(cJSON_GetObjectItemCaseSensitive(a.json, "promote")); /* a voter: none */
    answer_free(&a);

    struct cache_promote pr = {.active = true,
                               .attempts = 2,
                               .next_try_ms = clock_mono_ms() + 4000,
                               .last_error = "FAILED_PRECONDITION: can only promote a learner "
                                             "member which is in sync with leader"};
    assert_int_equal(cache_publish_promote(f->cache, &pr), 0);
    call(f, "GET", "/status", NULL, &a);
    const cJSON *po = jget(a.json, "promote");
    assert_true(cJSON_IsTrue(jget(po, "active")));
    assert_int_equal(jget(po, "attempts")->valueint, 2);
    assert_true(strstr(jstr(po, "last_error"), "in sync with leader") != NULL);
    assert_true(jget(po, "next_try_in_ms")->valueint > 0);
    assert_true(jget(po, "next_try_in_ms")->valueint <= 4000);
    answer_free(&a);

    /* The last good Status stays visible while the member is down, with the error. */
    spoil_status(&l, 0);
    publish_local(f, &l);
    call(f, "GET", "/status", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_false(cJSON_IsTrue(jget(a.json, "ok")));
    assert_string_equal(jstr(a.json, "error"), "status: UNAVAILABLE: refused");
    assert_string_equal(jstr(jget(a.json, "status"), "version"), "3.4.23");
    answer_free(&a);
}

static void extra_metrics(void *arg, struct metrics_writer *w)
{
    (void)arg;
    metrics_family(w, "etcd_agent_extra", "gauge", "A source added by a feature.");
    metrics_sample(w, "etcd_agent_extra", NULL, 5);
}

static void test_metrics_route(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    struct metrics_source src = {extra_metrics, NULL};
    for (int i = 0; i < METRICS_MAX_SOURCES; i++)
        assert_int_equal(routes_add_metrics(f->routes, &src), 0);
    assert_int_equal(routes_add_metrics(f->routes, &src), -ENOSPC);
    call(f, "GET", "/readyz", NULL, &a); /* counted, then visible in /metrics */
    answer_free(&a);
    call(f, "GET", "/metrics", NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(a.resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(a.resp.body, "\netcd_agent_http_requests_total{path=\"/readyz\","
                                        "code=\"503\"} 1\n"));
    assert_non_null(strstr(a.resp.body, "etcd_agent_info{version=\"test-version\""));
    assert_non_null(strstr(a.resp.body, "\netcd_agent_extra 5\n"));
    answer_free(&a);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_unknown_path_404),
        T(test_wrong_method_405),
        T(test_head_like_get),
        T(test_routes_add),
        T(test_readyz_no_observation),
        T(test_readyz_healthy),
        T(test_readyz_cached_age),
        T(test_readyz_failing_checks),
        T(test_readyz_verbose),
        T(test_livez),
        cmocka_unit_test(test_livez_never_answered),
        T(test_members_none_yet),
        T(test_members_one_failing),
        T(test_members_large_table),
        T(test_status),
        T(test_metrics_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
