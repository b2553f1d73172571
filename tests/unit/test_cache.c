/* test_cache.c - the probe cache's snapshot semantics and verdicts, the promotion backoff and
 * the probe timeouts: the pure parts of the probe loop (the etcd calls are covered by
 * tests/e2e/agent.sh against a real cluster). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "array.h"
#include "cache.h"
#include "clock.h"
#include "probe.h"
#include "promote.h"

static void test_snapshot_copy_on_write(void **state)
{
    (void)state;
    struct cache *c = cache_new(clock_mono_ms());
    assert_non_null(c);
    const struct cache_snapshot *empty = cache_acquire(c);
    assert_int_equal(empty->local.probed_at_ms, 0);
    assert_int_equal(empty->cluster.n_members, 0);

    static struct cache_local l;
    l.probed_at_ms = 42;
    assert_int_equal(cache_publish_local(c, &l), 0);
    /* A reader's snapshot never changes under it. */
    assert_int_equal(empty->local.probed_at_ms, 0);
    const struct cache_snapshot *s1 = cache_acquire(c);
    assert_int_equal(s1->local.probed_at_ms, 42);

    static struct cache_cluster cl;
    cl.probed_at_ms = 7;
    cl.n_members = 1;
    assert_int_equal(cache_publish_cluster(c, &cl), 0);
    struct cache_promote pr = {.attempts = 3};
    assert_int_equal(cache_publish_promote(c, &pr), 0);
    const struct cache_snapshot *s2 = cache_acquire(c);
    /* Publishing one part keeps the others. */
    assert_int_equal(s2->local.probed_at_ms, 42);
    assert_int_equal(s2->cluster.probed_at_ms, 7);
    assert_int_equal(s2->promote.attempts, 3);
    assert_int_equal(s1->cluster.probed_at_ms, 0);

    cache_release(c, empty);
    cache_release(c, s1);
    cache_release(c, s2);
    cache_release(c, NULL);
    cache_free(c);
}

struct race {
    struct cache *c;
    int rounds;
};

static void *writer(void *arg)
{
    struct race *r = arg;
    static struct cache_local l;
    for (int i = 1; i <= r->rounds; i++) {
        l.probed_at_ms = i;
        l.took_ms = (uint32_t)i; /* readers check both fields agree */
        if (cache_publish_local(r->c, &l) < 0)
            return (void *)1;
    }
    return NULL;
}

/* Readers and a writer at once (run under ASan/valgrind/TSan to be meaningful): every
 * snapshot a reader sees is whole. */
static void test_concurrent_readers(void **state)
{
    (void)state;
    struct race r = {.c = cache_new(0), .rounds = 3000};
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, writer, &r), 0);
    int64_t last = 0;
    for (int i = 0; i < 3000; i++) {
        const struct cache_snapshot *s = cache_acquire(r.c);
        assert_int_equal(s->local.probed_at_ms, (int64_t)s->local.took_ms);
        assert_true(s->local.probed_at_ms >= last);
        last = s->local.probed_at_ms;
        cache_release(r.c, s);
    }
    void *ret;
    pthread_join(w, &ret);
    assert_null(ret);
    cache_free(r.c);
}

static void test_counters(void **state)
{
    (void)state;
    struct cache *c = cache_new(0);
    cache_count_probe(c, CACHE_PROBE_CLUSTER, 0.001); /* on a bound: le is inclusive */
    cache_count_probe(c, CACHE_PROBE_CLUSTER, 6.0);   /* above the last bound */
    cache_count_probe(c, (enum cache_probe)99, 1.0);  /* ignored */
    cache_count_error(c, (enum cache_call)99);        /* ignored */
    cache_count_error(c, CACHE_CALL_PROMOTE);
    struct cache_counters k;
    cache_counters(c, &k);
    assert_int_equal(k.probe[CACHE_PROBE_CLUSTER].buckets[0], 1);
    assert_int_equal(k.probe[CACHE_PROBE_CLUSTER].inf, 1);
    assert_int_equal(k.probe[CACHE_PROBE_CLUSTER].count, 2);
    assert_int_equal(k.probe[CACHE_PROBE_LOCAL].count, 0);
    assert_int_equal(k.errors[CACHE_CALL_PROMOTE], 1);
    assert_string_equal(cache_call_name(CACHE_CALL_MEMBER_STATUS), "member_status");
    assert_string_equal(cache_call_name((enum cache_call)99), "unknown");
    cache_free(c);
}

static void member(struct cache_cluster *cl, bool healthy, bool learner)
{
    struct cache_member *m = &cl->members[cl->n_members++];
    memset(m, 0, sizeof(*m));
    m->id = cl->n_members;
    m->started = true;
    m->healthy = healthy;
    m->is_learner = learner;
}

static void test_verdict(void **state)
{
    (void)state;
    static struct cache_cluster cl;
    struct cache_verdict v;
    memset(&cl, 0, sizeof(cl));
    cache_verdict(&cl, &v); /* nothing known */
    assert_false(v.quorum);
    assert_false(v.recoverable);

    cl.ok = true;
    member(&cl, true, false);
    member(&cl, true, false);
    member(&cl, false, false);
    cache_verdict(&cl, &v);
    assert_true(v.quorum);
    assert_true(v.recoverable);
    assert_int_equal(v.n_failing, 1);
    assert_int_equal(v.failing[0], 2);

    cl.truncated = true; /* members we cannot see might be failing too */
    cache_verdict(&cl, &v);
    assert_false(v.recoverable);
    cl.truncated = false;

    cl.members[1].healthy = false;
    cache_verdict(&cl, &v);
    assert_false(v.quorum);
    assert_false(v.recoverable);

    /* 2 of 4 voters healthy is not a majority. */
    member(&cl, true, false);
    cache_verdict(&cl, &v);
    assert_int_equal(v.n_voters, 4);
    assert_false(v.quorum);

    /* Learners do not count for quorum. */
    memset(&cl, 0, sizeof(cl));
    cl.ok = true;
    member(&cl, true, false);
    member(&cl, false, false);
    member(&cl, false, true);
    member(&cl, false, true);
    cache_verdict(&cl, &v);
    assert_int_equal(v.n_voters, 2);
    assert_false(v.quorum); /* 1 of 2 */
    assert_int_equal(v.n_failing, 3);
}

static void test_promote_backoff(void **state)
{
    (void)state;
    static const uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    uint64_t b = 0;
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        b = promote_next_backoff(b);
        assert_int_equal(b, want[i]);
    }
    assert_int_equal(promote_next_backoff(UINT64_MAX), PROMOTE_BACKOFF_MAX_MS);
}

static void test_probe_timeout(void **state)
{
    (void)state;
    assert_int_equal(probe_call_timeout_ms(100), PROBE_MIN_TIMEOUT_MS);
    assert_int_equal(probe_call_timeout_ms(1000), 1000);
    assert_int_equal(probe_call_timeout_ms(60000), PROBE_MAX_TIMEOUT_MS);
}

static void test_probe_start_rejects_bad_config(void **state)
{
    (void)state;
    struct cache *c = cache_new(0);
    char err[256] = "";
    struct probe_config pc = {.interval_ms = 1000};
    assert_null(probe_start(&pc, c, err, sizeof(err)));
    assert_non_null(strstr(err, "endpoints"));
    const char *ep = "https://127.0.0.1:1";
    pc.endpoints = &ep;
    pc.n_endpoints = 1;
    pc.interval_ms = 0;
    assert_null(probe_start(&pc, c, err, sizeof(err)));
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_copy_on_write),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_promote_backoff),
        cmocka_unit_test(test_probe_timeout),
        cmocka_unit_test(test_probe_start_rejects_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
