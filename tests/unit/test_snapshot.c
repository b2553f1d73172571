/* test_snapshot.c - the snapshot module without etcd, through the real route table: access
 * control (TLS with a verified client certificate, or --allow-insecure-snapshot), the router's
 * 405 with Allow, 400 for an unknown source, 404 without --snapshot-dir or --data-dir (also
 * from a pool worker, for a missing file), the concurrency slots (429 with Retry-After, counted
 * in rejected_total), a skipped scheduled snapshot not counted as a refusal, and the .part
 * cleanup at start-up. Streaming itself is tests/e2e/snapshot.sh's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"
#include "cache.h"
#include "clock.h"
#include "http.h"
#include "routes.h"
#include "snapshot.h"
#include "testutil.h"

static const char *const eps[] = {"https://127.0.0.1:1"};
static char dir[64];
static struct cache *cache;
static struct routes *routes;
static struct snapshot *snap;

static void init_interval(bool insecure, const char *snapshot_dir, unsigned concurrency,
                          uint64_t interval_ms)
{
    char err[256];
    struct snapshot_config cfg = {
        .endpoints = eps,
        .n_endpoints = 1,
        .snapshot_dir = snapshot_dir,
        .allow_insecure = insecure,
        .concurrency = concurrency,
        .interval_ms = interval_ms,
    };
    cache = cache_new(clock_mono_ms());
    struct routes_config rc = {.cache = cache, .version = "test", .name = ""};
    routes = routes_new(&rc);
    assert_non_null(routes);
    snap = snapshot_new(&cfg, err, sizeof err);
    assert_non_null(snap);
    assert_int_equal(snapshot_add_routes(snap, routes), 0);
}

static void init(bool insecure, const char *snapshot_dir, unsigned concurrency)
{
    init_interval(insecure, snapshot_dir, concurrency, 0);
}

static void done(void)
{
    snapshot_free(snap);
    routes_free(routes);
    cache_free(cache);
    snap = NULL;
}

/* A deferred response (a pool worker's): wait for its headers, take the body, close it. */
static void drive(struct http_response *resp)
{
    struct http_body_source *src = resp->source;
    src->attach(src->ctx, NULL);
    int rc = HTTP_BODY_AGAIN;
    for (int i = 0; i < 2000 && rc == HTTP_BODY_AGAIN; i++) {
        rc = src->headers(src->ctx, resp);
        if (rc == HTTP_BODY_AGAIN)
            usleep(5000);
    }
    assert_int_equal(rc, 0);
    static char body[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = src->read(src->ctx, (uint8_t *)body + n, sizeof body - 1 - n)) > 0)
        n += (size_t)r;
    body[n] = '\0';
    src->close(src->ctx, true);
    resp->body = strdup(body);
    resp->source = NULL;
}

/* Route one request; returns the status and frees the response. allow gets the Allow or
 * Retry-After header. */
static int route(const char *method, const char *path, const char *query, bool tls, bool verified,
                 char *allow, size_t allow_len)
{
    struct http_request req = {.method = method,
                               .path = path,
                               .query = query,
                               .version = 11,
                               .tls = tls,
                               .client_verified = verified,
                               .peer = "test"};
    struct http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.content_length = -1;
    routes_handle(routes, &req, &resp);
    if (resp.source)
        drive(&resp); /* a file call on a worker; none of these cases may start a snapshot */
    if (allow) {
        allow[0] = '\0';
        for (size_t i = 0; i < resp.n_extra; i++)
            if (strcmp(resp.extra[i].name, "allow") == 0 ||
                strcmp(resp.extra[i].name, "retry-after") == 0)
                snprintf(allow, allow_len, "%s", resp.extra[i].value);
    }
    assert_non_null(resp.body);
    assert_non_null(strstr(resp.body, "\"error\""));
    free(resp.body);
    return resp.status;
}

static void test_paths_and_access(void **state)
{
    (void)state;
    init(false, NULL, 1);
    char allow[64];
    /* plain listener, TLS without a verified client: 403 before anything else */
    assert_int_equal(route("GET", "/snapshot", "", false, false, NULL, 0), 403);
    assert_int_equal(route("POST", "/snapshots", "", false, false, NULL, 0), 403);
    assert_int_equal(route("GET", "/snapshots/x", "", true, false, NULL, 0), 403);
    /* verified TLS client */
    assert_int_equal(route("PUT", "/snapshot", "", true, true, allow, sizeof allow), 405);
    assert_string_equal(allow, "GET, HEAD");
    assert_int_equal(route("GET", "/snapshot", "source=tape", true, true, NULL, 0), 400);
    assert_int_equal(route("GET", "/snapshot", "source=disk", true, true, NULL, 0), 404);
    assert_int_equal(route("GET", "/snapshots", "", true, true, NULL, 0), 404);
    assert_int_equal(route("POST", "/snapshots", "", true, true, NULL, 0), 404);
    done();
}

static void test_insecure_flag(void **state)
{
    (void)state;
    init(true, NULL, 1);
    /* allowed on the plain listener now: reaches the feature (no --snapshot-dir: 404) */
    assert_int_equal(route("GET", "/snapshots", "", false, false, NULL, 0), 404);
    /* TLS without a verified certificate stays refused */
    assert_int_equal(route("GET", "/snapshots", "", true, false, NULL, 0), 403);
    done();
}

static void test_slots(void **state)
{
    (void)state;
    init(true, NULL, 2);
    struct snapctx *ctx = snapshot_ctx(snap);
    assert_true(snapctx_slot_acquire(ctx));
    assert_true(snapctx_slot_acquire(ctx));
    assert_false(snapctx_slot_acquire(ctx));
    assert_int_equal(atomic_load(&ctx->m.rejected), 1);
    char ra[16];
    /* a streamed snapshot is refused while the slots are taken (nothing is started) */
    assert_int_equal(route("GET", "/snapshot", "", false, false, ra, sizeof ra), 429);
    assert_int_equal(atomic_load(&ctx->m.rejected), 2);
    char want[16];
    snprintf(want, sizeof want, "%d", SNAPSHOT_RETRY_AFTER_S);
    assert_string_equal(ra, want); /* the Retry-After header */
    snapctx_slot_release(ctx);
    assert_true(snapctx_slot_acquire(ctx));
    snapctx_slot_release(ctx);
    snapctx_slot_release(ctx);
    done();
}

/* The schedule finds the only slot taken: it skips its turn, and that is no refused request. */
static void test_schedule_skip_not_rejected(void **state)
{
    (void)state;
    init_interval(true, dir, 1, 20);
    struct snapctx *ctx = snapshot_ctx(snap);
    assert_true(snapctx_slot_acquire(ctx));
    usleep(200 * 1000); /* ~10 turns, all skipped */
    assert_int_equal(atomic_load(&ctx->m.rejected), 0);
    assert_int_equal(atomic_load(&ctx->m.saved_failed), 0); /* skipped, not attempted */
    snapctx_slot_release(ctx);
    done();
}

static void test_saved_dir(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/20261123T223400Z-rev5.db.part", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    init(true, dir, 1);
    assert_int_equal(access(path, F_OK), -1); /* removed at start-up */
    char allow[64];
    assert_int_equal(route("DELETE", "/snapshots", "", false, false, allow, sizeof allow), 405);
    assert_string_equal(allow, "GET, HEAD, POST");
    assert_int_equal(route("GET", "/snapshots/../etc/passwd", "", false, false, NULL, 0), 404);
    /* a valid name that is not there: answered by a pool worker */
    assert_int_equal(route("GET", "/snapshots/20261123T223400Z-rev5.db", "", false, false, NULL, 0),
                     404);
    done();

    char err[256];
    struct snapshot_config bad = {
        .endpoints = eps, .n_endpoints = 1, .snapshot_dir = "/nonexistent"};
    assert_null(snapshot_new(&bad, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_snapshot.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_and_access),
        cmocka_unit_test(test_insecure_flag),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_schedule_skip_not_rejected),
        cmocka_unit_test(test_saved_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
