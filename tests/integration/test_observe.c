/* test_observe.c - reset-member's observe.c against a real 3-member TLS cluster
 * (tests/cluster.sh; env ETCD_TEST_*): member list facts, concurrent health probes, self by
 * peer URL (not probed, not counted), unreachable endpoints and a wrong CA as facts, and a
 * live member's data dir seen as locked (so decide() refuses to touch it). Read-only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "decide.h"
#include "observe.h"

#define TEST_TIMEOUT_MS 10000
#define UNREACHABLE_BUDGET_MS 5000
#define CLOSED_ENDPOINT "https://127.0.0.1:1"
#define NOT_OUR_PEER_URL "https://127.0.0.1:2"

struct env {
    struct config_list eps, names, peers;
    const char *cacert, *cert, *key, *other_cacert, *cluster_dir;
    struct tls_ctx *tls;
};

static struct env E;

static int setup(void **state)
{
    const char *eps = getenv("ETCD_TEST_ENDPOINTS"), *ic = getenv("ETCD_TEST_INITIAL_CLUSTER");
    char err[256];

    (void)state;
    E.cacert = getenv("ETCD_TEST_CACERT");
    E.cert = getenv("ETCD_TEST_CERT");
    E.key = getenv("ETCD_TEST_KEY");
    E.other_cacert = getenv("ETCD_TEST_OTHER_CACERT");
    E.cluster_dir = getenv("CLUSTER_DIR");
    if (!eps || !ic || !E.cacert || !E.cert || !E.key || !E.other_cacert || !E.cluster_dir) {
        fprintf(stderr, "ETCD_TEST_* not set: run through tests/integration/run.sh\n");
        return -1;
    }
    if (config_parse_list(eps, &E.eps) != 0 ||
        config_parse_initial_cluster(ic, &E.names, &E.peers) != 0)
        return -1;
    E.tls = tls_client_new(
        &(struct tls_files){.ca_file = E.cacert, .cert_file = E.cert, .key_file = E.key}, err,
        sizeof(err));
    if (!E.tls) {
        fprintf(stderr, "tls: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tls_ctx_free(E.tls);
    config_list_free(&E.eps);
    config_list_free(&E.names);
    config_list_free(&E.peers);
    return 0;
}

static struct observe_config cfg(const char *peer_url, struct tls_ctx *tls)
{
    return (struct observe_config){.data_dir = "/nonexistent/reset-member-test",
                                   .peer_url = peer_url,
                                   .endpoints = (const char *const *)E.eps.items,
                                   .n_endpoints = E.eps.n,
                                   .tls = tls,
                                   .timeout_ms = TEST_TIMEOUT_MS};
}

static void test_members_and_health(void **state)
{
    struct observe_config c = cfg(NOT_OUR_PEER_URL, E.tls);
    struct observe o;
    struct decide_facts f;
    struct decide_summary s;

    (void)state;
    memset(&o, 0, sizeof(o));
    observe_data(&c, &o);
    assert_int_equal(o.data.verdict, DATADIR_EMPTY);
    assert_int_equal(observe_cluster(&c, &o), 0);
    assert_true(o.reachable);
    assert_non_null(o.ch);
    assert_int_equal(o.n, E.eps.n);
    assert_true(o.list.header.cluster_id != 0);
    for (size_t i = 0; i < o.n; i++) {
        assert_true(o.dm[i].started);
        assert_false(o.dm[i].peer_url_ours);
        assert_false(o.dm[i].learner);
    }
    observe_health(&c, &o);
    assert_true(o.health_probed);
    for (size_t i = 0; i < o.n; i++) {
        assert_true(o.health[i].probed);
        assert_true(o.dm[i].healthy);
        assert_true(o.health[i].leader != 0);
    }
    observe_facts(&o, true, &f);
    assert_int_equal(f.data, DECIDE_DATA_EMPTY);
    decide_summarize(&f, &s);
    assert_int_equal(s.voters, E.eps.n);
    assert_int_equal(s.healthy_voters_other, E.eps.n);
    assert_true(s.quorum);
    observe_free(&o);
}

/* Our own entry (by peer URL) is neither probed nor counted. */
static void test_self_by_peer_url(void **state)
{
    struct observe_config c = cfg(E.peers.items[1], E.tls);
    struct observe o;
    struct decide_facts f;
    struct decide_summary s;
    size_t ours = 0;

    (void)state;
    memset(&o, 0, sizeof(o));
    observe_data(&c, &o);
    assert_int_equal(observe_cluster(&c, &o), 0);
    assert_true(o.reachable);
    observe_health(&c, &o);
    for (size_t i = 0; i < o.n; i++) {
        if (!o.dm[i].peer_url_ours)
            continue;
        ours++;
        assert_false(o.health[i].probed);
        assert_false(o.dm[i].healthy);
        assert_string_equal(o.list.members[i].name, E.names.items[1]);
    }
    assert_int_equal(ours, 1);
    observe_facts(&o, true, &f);
    decide_summarize(&f, &s);
    assert_int_equal(s.self_by_url, 1);
    assert_int_equal(s.healthy_voters_other, E.eps.n - 1);
    observe_free(&o);
}

static void test_unreachable_is_a_fact(void **state)
{
    const char *eps[] = {CLOSED_ENDPOINT};
    struct observe_config c = cfg(NOT_OUR_PEER_URL, E.tls);
    struct observe o;
    struct decide_facts f;
    struct decide_decision d;
    long long t0 = clock_mono_ms();

    (void)state;
    c.endpoints = eps;
    c.n_endpoints = 1;
    c.timeout_ms = UNREACHABLE_BUDGET_MS;
    memset(&o, 0, sizeof(o));
    observe_data(&c, &o);
    assert_int_equal(observe_cluster(&c, &o), 0);
    assert_false(o.reachable);
    assert_null(o.ch);
    assert_true(o.list_error[0] != '\0');
    assert_true(clock_mono_ms() - t0 < UNREACHABLE_BUDGET_MS + 1000);
    observe_facts(&o, true, &f);
    decide(&f, &d);
    assert_int_equal(d.action, DECIDE_BOOTSTRAP); /* empty data, nobody answers */
    observe_free(&o);
}

static void test_wrong_ca_is_unreachable(void **state)
{
    char err[256];
    struct tls_ctx *other = tls_client_new(
        &(struct tls_files){.ca_file = E.other_cacert, .cert_file = E.cert, .key_file = E.key}, err,
        sizeof(err));
    struct observe_config c = cfg(NOT_OUR_PEER_URL, other);
    struct observe o;

    (void)state;
    assert_non_null(other);
    memset(&o, 0, sizeof(o));
    assert_int_equal(observe_cluster(&c, &o), 0);
    assert_false(o.reachable);
    observe_free(&o);
    tls_ctx_free(other);
}

/* A running member's data dir: valid, and locked, so nothing may touch it. */
static void test_live_data_dir_is_locked(void **state)
{
    char dir[4096];
    struct observe_config c = cfg(E.peers.items[0], E.tls);
    struct observe o;
    struct decide_facts f;
    struct decide_decision d;

    (void)state;
    assert_true(snprintf(dir, sizeof(dir), "%s/members/0/data", E.cluster_dir) < (int)sizeof(dir));
    c.data_dir = dir;
    memset(&o, 0, sizeof(o));
    observe_data(&c, &o);
    assert_int_equal(o.data_rc, 0);
    assert_int_equal(o.data.verdict, DATADIR_VALID);
    assert_int_equal(o.locked, 1);
    assert_int_equal(observe_cluster(&c, &o), 0);
    observe_facts(&o, true, &f);
    decide(&f, &d);
    assert_int_equal(d.action, DECIDE_REFUSE);
    observe_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_and_health),
        cmocka_unit_test(test_self_by_peer_url),
        cmocka_unit_test(test_unreachable_is_a_fact),
        cmocka_unit_test(test_wrong_ca_is_unreachable),
        cmocka_unit_test(test_live_data_dir_is_locked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
