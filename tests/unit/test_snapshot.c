/* test_snapshot.c - agent/snapshot.c without etcd: which paths it takes, access control (TLS
 * with a verified client certificate, or --allow-insecure-snapshot), 405 with Allow, 400 for an
 * unknown source, 404 without --snapshot-dir or --data-dir, the concurrency slots (429 with
 * Retry-After), and the .part cleanup at init. Streaming itself is tests/e2e/snapshot.sh's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "bounds.h"
#include "snapshot.h"

static const char *const eps[] = {"https://127.0.0.1:1"};
static char dir[64];

static void init(bool insecure, const char *snapshot_dir, unsigned concurrency)
{
    char err[256];
    struct snapshot_config cfg = {
        .endpoints = eps,
        .n_endpoints = 1,
        .snapshot_dir = snapshot_dir,
        .allow_insecure = insecure,
        .concurrency = concurrency,
    };
    assert_int_equal(snapshot_init(&cfg, err, sizeof err), 0);
}

/* Route one request; returns the status (0 when not routed) and frees the response. */
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
    if (!snapshot_route(&req, &resp))
        return 0;
    assert_null(resp.source); /* none of these cases may start a snapshot */
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
    assert_int_equal(route("GET", "/readyz", "", false, false, NULL, 0), 0);
    assert_int_equal(route("GET", "/snapshotx", "", true, true, NULL, 0), 0);
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
    snapshot_shutdown();
}

static void test_insecure_flag(void **state)
{
    (void)state;
    init(true, NULL, 1);
    /* allowed on the plain listener now: reaches the method check */
    assert_int_equal(route("DELETE", "/snapshot", "", false, false, NULL, 0), 405);
    /* TLS without a verified certificate stays refused */
    assert_int_equal(route("DELETE", "/snapshot", "", true, false, NULL, 0), 403);
    snapshot_shutdown();
}

static void test_slots(void **state)
{
    (void)state;
    init(true, NULL, 2);
    assert_true(snapshot_slot_acquire());
    assert_true(snapshot_slot_acquire());
    assert_false(snapshot_slot_acquire());
    char ra[16];
    /* a streamed snapshot is refused while the slots are taken (nothing is started) */
    assert_int_equal(route("GET", "/snapshot", "", false, false, ra, sizeof ra), 429);
    char want[16];
    snprintf(want, sizeof want, "%d", SNAPSHOT_RETRY_AFTER_S);
    assert_string_equal(ra, want); /* the Retry-After header */
    snapshot_slot_release();
    assert_true(snapshot_slot_acquire());
    snapshot_slot_release();
    snapshot_slot_release();
    snapshot_shutdown();
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
    assert_int_equal(access(path, F_OK), -1); /* removed at init */
    char allow[64];
    assert_int_equal(route("DELETE", "/snapshots", "", false, false, allow, sizeof allow), 405);
    assert_string_equal(allow, "GET, HEAD, POST");
    assert_int_equal(route("GET", "/snapshots/../etc/passwd", "", false, false, NULL, 0), 404);
    assert_int_equal(route("GET", "/snapshots/20261123T223400Z-rev5.db", "", false, false, NULL, 0),
                     404);
    snapshot_shutdown();

    char err[256];
    struct snapshot_config bad = {
        .endpoints = eps, .n_endpoints = 1, .snapshot_dir = "/nonexistent"};
    assert_true(snapshot_init(&bad, err, sizeof err) < 0);
    assert_non_null(strstr(err, "/nonexistent"));
    snapshot_shutdown();
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_and_access),
        cmocka_unit_test(test_insecure_flag),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_saved_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
