/* test_health.c - the verdicts maintenance and backups add to the probes: the backup
 * lines of /readyz and /status (health_backup_age_ms, health_backup_note) and /livez's grace
 * during a defrag we started (health_live). Pure functions of the cache and the clocks; the
 * e2e cannot reach the grace (etcd keeps answering Status while it defragments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "health.h"

#define HOUR_MS (3600 * 1000LL)

static void test_disabled_says_nothing(void **state)
{
    (void)state;
    struct cache_backup b = {0};
    char note[128] = "x";
    health_backup_note(&b, 100 * HOUR_MS, note, sizeof note);
    assert_string_equal(note, "");
    assert_int_equal(health_backup_age_ms(&b, 100 * HOUR_MS), -1);
}

static void test_on_demand_only_never_late(void **state)
{
    (void)state;
    struct cache_backup b = {.enabled = true, .started_wall_ms = 0};
    char note[128] = "x";
    health_backup_note(&b, 100 * HOUR_MS, note, sizeof note);
    assert_string_equal(note, "");
}

static void test_none_since_start(void **state)
{
    (void)state;
    struct cache_backup b = {.enabled = true, .interval_ms = HOUR_MS, .started_wall_ms = 0};
    snprintf(b.store, sizeof b.store, "s3://bucket/prefix");
    char note[128];
    health_backup_note(&b, 2 * HOUR_MS, note, sizeof note); /* 2 x interval: not yet late */
    assert_string_equal(note, "");
    health_backup_note(&b, 2 * HOUR_MS + 1, note, sizeof note);
    assert_string_equal(note, "no good backup in s3://bucket/prefix since the agent started");
}

static void test_newest_too_old(void **state)
{
    (void)state;
    struct cache_backup b = {.enabled = true,
                             .interval_ms = HOUR_MS,
                             .started_wall_ms = 0,
                             .last_good_wall_ms = 10 * HOUR_MS};
    char note[128];
    assert_int_equal(health_backup_age_ms(&b, 11 * HOUR_MS), HOUR_MS);
    health_backup_note(&b, 12 * HOUR_MS, note, sizeof note);
    assert_string_equal(note, "");
    health_backup_note(&b, 13 * HOUR_MS, note, sizeof note);
    assert_string_equal(note, "newest good backup is 10800s old (interval 3600s)");
    /* a backup named in the future (clock skew between members) is age 0, not negative */
    assert_int_equal(health_backup_age_ms(&b, 9 * HOUR_MS), 0);
}

/* /livez: silent for longer than livez_intervals x interval fails, unless a defrag the
 * coordinator started on this member is under way and within --defrag-timeout. */
static const struct health_params live_params = {.interval_ms = 1000, .livez_intervals = 3};

static bool live_at(const struct cache_snapshot *s, int64_t now)
{
    struct health_report r;
    health_live(s, now, 0, &live_params, &r);
    return r.ok;
}

static void test_livez_silent_member_fails(void **state)
{
    (void)state;
    struct cache_snapshot s = {0};
    s.local.answered_at_ms = s.local.probed_at_ms = 10000;
    assert_true(live_at(&s, 13000));
    assert_false(live_at(&s, 13001));
}

static void test_livez_grace_during_our_defrag(void **state)
{
    (void)state;
    struct cache_snapshot s = {0};
    s.local.answered_at_ms = s.local.probed_at_ms = 10000;
    s.maint.defragmenting = true;
    s.maint.defrag_since_ms = 11000;
    s.maint.defrag_timeout_ms = 600000;
    assert_true(live_at(&s, 13001));
    assert_true(live_at(&s, 11000 + 600000));
    /* past --defrag-timeout the usual limit applies again */
    assert_false(live_at(&s, 11000 + 600001));
    /* a defrag flag older than the member's last answer gives no grace from before it */
    s.maint.defrag_since_ms = 9000;
    assert_false(live_at(&s, 13001));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disabled_says_nothing),
        cmocka_unit_test(test_on_demand_only_never_late),
        cmocka_unit_test(test_none_since_start),
        cmocka_unit_test(test_newest_too_old),
        cmocka_unit_test(test_livez_silent_member_fails),
        cmocka_unit_test(test_livez_grace_during_our_defrag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
