/* test_retention.c - tiered retention as data: each row is a --backup-keep value, a clock and a
 * list of backups (UTC times, good or not), and the verdict expected for each backup; then the
 * --backup-keep parser's accepted and refused values, and the period arithmetic checked against
 * libc's gmtime_r/strftime("%G-%V") over many times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "array.h"
#include "retention.h"

#define ROW_MAX 16

struct bk {
    const char *at; /* "YYYY-MM-DDTHH:MM:SS", UTC */
    bool good;
};

struct row {
    const char *name;
    const char *keep; /* --backup-keep, NULL: no rule */
    const char *now;
    struct bk b[ROW_MAX];
    const char *want;          /* per backup: K keep, P prune */
    unsigned reasons[ROW_MAX]; /* 0: not checked */
};

#define G(t)                                                                                       \
    {                                                                                              \
        t, true                                                                                    \
    }
#define U(t)                                                                                       \
    {                                                                                              \
        t, false                                                                                   \
    }

enum {
    NG = RETENTION_KEEP_NEWEST_GOOD,
    L = RETENTION_KEEP_LAST,
    H = RETENTION_KEEP_HOURLY,
    D = RETENTION_KEEP_DAILY,
    W = RETENTION_KEEP_WEEKLY,
    MO = RETENTION_KEEP_MONTHLY,
    UNS = RETENTION_KEEP_UNSUPERSEDED,
    FUT = RETENTION_KEEP_FUTURE,
    EXP = RETENTION_PRUNE_EXPIRED,
    RED = RETENTION_PRUNE_REDUNDANT,
    UNV = RETENTION_PRUNE_UNVERIFIED,
};

static struct row rows[] = {
    {"plain_number_keeps_newest_n",
     "3",
     "2026-12-03T12:00:00",
     {G("2026-12-03T11:00:00"), G("2026-12-03T10:00:00"), G("2026-12-03T09:00:00"),
      G("2026-12-03T08:00:00"), G("2026-12-03T07:00:00")},
     "KKKPP",
     {NG | L, L, L, EXP, EXP}},
    {"plain_number_any_input_order",
     "2",
     "2026-12-03T12:00:00",
     {G("2026-12-03T08:00:00"), G("2026-12-03T11:00:00"), G("2026-12-03T09:00:00")},
     "PKK",
     {EXP, NG | L, L}},
    {"all_unverified_nothing_pruned",
     "1",
     "2026-12-03T12:00:00",
     {U("2026-12-03T11:00:00"), U("2026-12-03T10:00:00"), U("2026-12-01T10:00:00")},
     "KKK",
     {UNS, UNS, UNS}},
    {"newer_unverified_kept_older_good_still_counts",
     "1",
     "2026-12-03T12:00:00",
     {U("2026-12-03T11:30:00"), G("2026-12-03T11:00:00"), G("2026-12-03T10:00:00")},
     "KKP",
     {UNS, NG | L, EXP}},
    {"older_unverified_pruned_once_superseded",
     "5",
     "2026-12-03T12:00:00",
     {G("2026-12-03T11:00:00"), U("2026-12-03T10:00:00"), G("2026-12-03T09:00:00")},
     "KPK",
     {NG | L, UNV, L}},
    {"last_good_never_deleted_even_if_old",
     "hourly=1",
     "2027-06-01T00:00:00",
     {U("2027-05-31T23:00:00"), U("2027-05-31T22:00:00"), G("2026-01-01T00:00:00"),
      G("2025-01-01T00:00:00")},
     "KKKP",
     {UNS, UNS, NG | H, EXP}},
    {"hourly_newest_of_each_hour",
     "hourly=2",
     "2026-12-03T11:00:00",
     {G("2026-12-03T10:55:00"), G("2026-12-03T10:35:00"), G("2026-12-03T10:05:00"),
      G("2026-12-03T09:55:00"), G("2026-12-03T08:55:00")},
     "KPPKP",
     {NG | H, RED, RED, H, EXP}},
    {"hour_boundary",
     "hourly=2",
     "2026-12-03T11:00:00",
     {G("2026-12-03T10:00:00"), G("2026-12-03T09:59:59"), G("2026-12-03T09:00:00")},
     "KKP",
     {NG | H, H, RED}},
    {"midnight_boundary",
     "daily=2",
     "2026-12-04T13:00:00",
     {G("2026-12-04T12:00:00"), G("2026-12-04T00:00:00"), G("2026-12-03T23:59:59"),
      G("2026-12-03T00:00:00")},
     "KPKP",
     {NG | D, RED, D, RED}},
    /* 2026-12-06 is a Sunday, 2026-12-07 a Monday */
    {"iso_week_starts_monday",
     "weekly=2",
     "2026-12-08T00:00:00",
     {G("2026-12-07T00:00:00"), G("2026-12-06T23:59:59"), G("2026-12-06T10:00:00"),
      G("2026-11-30T00:00:00"), G("2026-11-29T23:59:59")},
     "KKPPP",
     {NG | W, W, RED, RED, EXP}},
    /* 2026-12-31 (Thursday) and 2027-01-01 (Friday) are both in ISO week 2026-W53 */
    {"iso_week_spans_new_year",
     "weekly=1",
     "2027-01-02T00:00:00",
     {G("2027-01-01T00:00:00"), G("2026-12-31T23:00:00")},
     "KP",
     {NG | W, RED}},
    {"new_year_is_a_new_month",
     "weekly=1,monthly=2",
     "2027-01-02T00:00:00",
     {G("2027-01-01T00:00:00"), G("2026-12-31T23:00:00"), G("2026-12-01T00:00:00")},
     "KKP",
     {NG | W | MO, MO, RED}},
    {"month_boundary_leap_february",
     "monthly=2",
     "2028-03-02T00:00:00",
     {G("2028-03-01T00:00:00"), G("2028-02-29T23:59:59"), G("2028-02-01T00:00:00"),
      G("2028-01-31T23:59:59")},
     "KKPP",
     {NG | MO, MO, RED, EXP}},
    /* periods without a backup do not count: a week without backups expires nothing */
    {"gap_does_not_expire_older",
     "daily=3",
     "2026-12-30T12:00:00",
     {G("2026-12-30T01:00:00"), G("2026-12-10T01:00:00"), G("2026-12-02T01:00:00"),
      G("2026-12-01T01:00:00")},
     "KKKP",
     {NG | D, D, D, EXP}},
    {"future_backup_kept_and_counts_for_nothing",
     "1",
     "2026-12-03T12:00:00",
     {G("2026-12-05T00:00:00"), G("2026-12-03T11:00:00"), G("2026-12-03T10:00:00")},
     "KKP",
     {FUT, NG | L, EXP}},
    {"future_within_slack_is_normal",
     "1",
     "2026-12-03T12:00:00",
     {G("2026-12-03T12:30:00"), G("2026-12-03T11:00:00")},
     "KP",
     {NG | L, EXP}},
    {"only_future_backups_nothing_pruned",
     "1",
     "2026-12-03T12:00:00",
     {G("2027-01-01T00:00:00"), U("2027-01-02T00:00:00")},
     "KK",
     {FUT, FUT}},
    /* our clock far ahead: nothing expires faster than with the right clock */
    {"clock_far_ahead_same_verdict",
     "hourly=2",
     "2036-12-03T12:00:00",
     {G("2026-12-03T10:55:00"), G("2026-12-03T10:05:00"), G("2026-12-03T09:55:00"),
      G("2026-12-03T08:55:00")},
     "KPKP",
     {NG | H, RED, H, EXP}},
    {"same_time_twice_first_listed_wins",
     "1",
     "2026-12-03T12:00:00",
     {G("2026-12-03T11:00:00"), G("2026-12-03T11:00:00")},
     "KP",
     {NG | L, EXP}},
    {"no_rule_keeps_all",
     NULL,
     "2026-12-03T12:00:00",
     {G("2026-12-03T11:00:00"), G("2020-12-03T11:00:00"), U("2019-12-03T11:00:00")},
     "KKP",
     {NG, L, UNV}},
    {"tiers_and_last_together",
     "last=2,daily=2",
     "2026-12-04T13:00:00",
     {G("2026-12-04T12:00:00"), G("2026-12-04T11:00:00"), G("2026-12-04T10:00:00"),
      G("2026-12-03T10:00:00"), G("2026-12-02T10:00:00")},
     "KKPKP",
     {NG | L | D, L, RED, D, EXP}},
    {"before_1970",
     "daily=1",
     "1969-12-31T12:00:00",
     {G("1969-12-31T10:00:00"), G("1969-12-31T00:00:00"), G("1969-12-30T23:00:00")},
     "KPP",
     {NG | D, RED, EXP}},
    {"single_good",
     "hourly=24,daily=7,weekly=4,monthly=12",
     "2026-12-03T12:00:00",
     {G("2026-12-03T11:00:00")},
     "K",
     {NG | H | D | W | MO}},
};

static int64_t at(const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

    assert_non_null(end);
    assert_int_equal(*end, '\0');
    return (int64_t)timegm(&tm);
}

static void run_row(void **state)
{
    const struct row *r = *state;
    struct retention_policy p = {0};
    struct retention_backup b[ROW_MAX];
    struct retention_verdict v[ROW_MAX];
    char err[256], why[128];
    size_t n = strlen(r->want);

    if (r->keep != NULL)
        assert_int_equal(retention_parse(r->keep, &p, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(r->b[i].at);
        b[i] = (struct retention_backup){at(r->b[i].at), r->b[i].good};
    }
    assert_int_equal(retention_decide(&p, b, n, at(r->now), v), 0);
    for (size_t i = 0; i < n; i++) {
        retention_reason_str(v[i].reasons, why, sizeof why);
        if (v[i].keep != (r->want[i] == 'K') ||
            (r->reasons[i] != 0 && v[i].reasons != r->reasons[i])) {
            char wwhy[128];
            fail_msg("%s: backup %zu (%s): got %s (%s), want %c (%s)", r->name, i, r->b[i].at,
                     v[i].keep ? "keep" : "prune", why, r->want[i],
                     retention_reason_str(r->reasons[i], wwhy, sizeof wwhy));
        }
        /* exactly one prune reason, and prune reasons only on pruned backups */
        unsigned prune = v[i].reasons & (EXP | RED | UNV);
        assert_true(v[i].keep ? prune == 0 : (prune != 0 && (prune & (prune - 1)) == 0));
        assert_true(why[0] != '\0');
    }
}

struct parse_row {
    const char *in;
    int rc;
    struct retention_policy want;
    const char *err_has;
};

static const struct parse_row parse_rows[] = {
    {"24", 0, {.last = 24}, NULL},
    {"1", 0, {.last = 1}, NULL},
    {"last=3", 0, {.last = 3}, NULL},
    {"hourly=24,daily=7,weekly=4,monthly=12", 0, {.tier = {24, 7, 4, 12}}, NULL},
    {"monthly=12,hourly=1", 0, {.tier = {1, 0, 0, 12}}, NULL},
    {"last=2,daily=7", 0, {.last = 2, .tier = {0, 7, 0, 0}}, NULL},
    {"100000", 0, {.last = 100000}, NULL},
    {"", -22, {0}, "empty"},
    {"0", -22, {0}, "from 1 to"},
    {"-1", -22, {0}, "from 1 to"},
    {"100001", -22, {0}, "from 1 to"},
    {"99999999999999999999999", -22, {0}, "from 1 to"},
    {"999999999999999999999999", -22, {0}, "at least 1"},
    {"hourly=0", -22, {0}, "from 1 to"},
    {"hourly=", -22, {0}, "needs a number"},
    {"hourly", -22, {0}, "not KEY=N"},
    {"=5", -22, {0}, "unknown key"},
    {"yearly=3", -22, {0}, "unknown key \"yearly\""},
    {"Hourly=3", -22, {0}, "unknown key"},
    {"hourly=1,hourly=2", -22, {0}, "\"hourly\" given twice"},
    {"3,last=2", -22, {0}, "not KEY=N"},
    {"last=2,3", -22, {0}, "not KEY=N"},
    {"hourly=24,", -22, {0}, "empty item"},
    {",daily=1", -22, {0}, "empty item"},
    {"daily=1,,weekly=1", -22, {0}, "empty item"},
    {"daily=1x", -22, {0}, "from 1 to"},
    {"daily= 1", -22, {0}, "from 1 to"},
    {" 5", -22, {0}, "from 1 to"},
    {"daily=1;weekly=2", -22, {0}, "from 1 to"},
};

static void test_parse(void **state)
{
    char err[256], back[128];

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(parse_rows); i++) {
        const struct parse_row *r = &parse_rows[i];
        struct retention_policy p = {.last = 77};
        int rc = retention_parse(r->in, &p, err, sizeof err);

        if (rc != r->rc)
            fail_msg("\"%s\": rc %d, want %d (%s)", r->in, rc, r->rc, err);
        if (rc == 0) {
            assert_memory_equal(&p, &r->want, sizeof p);
            /* the printed form parses back to the same policy */
            struct retention_policy again;
            assert_int_equal(retention_parse(retention_policy_str(&p, back, sizeof back), &again,
                                             err, sizeof err),
                             0);
            assert_memory_equal(&p, &again, sizeof p);
        } else {
            assert_int_equal(p.last, 77); /* untouched on error */
            if (strstr(err, r->err_has) == NULL)
                fail_msg("\"%s\": error \"%s\" lacks \"%s\"", r->in, err, r->err_has);
            assert_null(strchr(err, '\n'));
        }
    }
    assert_int_equal(retention_parse(NULL, &(struct retention_policy){0}, err, sizeof err), -22);
}

static void test_long_value_refused(void **state)
{
    char *s = malloc(CONFIG_MAX_VALUE + 10), err[256];
    struct retention_policy p;

    (void)state;
    memset(s, '1', CONFIG_MAX_VALUE + 9);
    s[CONFIG_MAX_VALUE + 9] = '\0';
    assert_int_equal(retention_parse(s, &p, err, sizeof err), -22);
    assert_non_null(strstr(err, "too long"));
    assert_true(strlen(err) < 200);
    free(s);
}

/* retention_period against libc: same period <=> same hour/day/%G-%V/month, over random times
 * from 1900 to 2200 and every hour around New Year of a few years (ISO weeks 52/53/1). */
static void test_periods_against_libc(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    int64_t prev = 0;
    char pk[4][32] = {{0}};

    (void)state;
    for (int k = 0; k < 200000; k++) {
        int64_t t;
        if (k < 100000) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t = -2208988800LL + (int64_t)(x % (300ULL * 365 * 86400));
        } else {
            int year = 1999 + (k - 100000) / 10000;
            struct tm ny = {.tm_year = year - 1900, .tm_mon = 11, .tm_mday = 20};
            t = (int64_t)timegm(&ny) + (int64_t)((k - 100000) % 10000) * 900;
        }
        time_t tt = (time_t)t;
        struct tm tm;
        char keys[4][32];
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(keys[0], sizeof keys[0], "%Y-%m-%d %H", &tm);
        strftime(keys[1], sizeof keys[1], "%Y-%m-%d", &tm);
        strftime(keys[2], sizeof keys[2], "%G-%V", &tm);
        strftime(keys[3], sizeof keys[3], "%Y-%m", &tm);
        if (k > 0 && k != 100000) {
            for (int tier = 0; tier < RETENTION_TIERS; tier++) {
                bool same_libc = strcmp(keys[tier], pk[tier]) == 0;
                bool same_ours = retention_period((enum retention_tier)tier, t) ==
                                 retention_period((enum retention_tier)tier, prev);
                if (k >= 100000 && same_libc != same_ours)
                    fail_msg("tier %d at %lld: libc %s/%s, ours differ=%d", tier, (long long)t,
                             keys[tier], pk[tier], !same_ours);
                if (k < 100000 && same_libc && !same_ours)
                    fail_msg("tier %d at %lld: libc says same period", tier, (long long)t);
            }
        }
        /* monthly period is year*12+month, exactly */
        assert_int_equal(retention_period(RETENTION_MONTHLY, t),
                         (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon);
        memcpy(pk, keys, sizeof pk);
        prev = t;
    }
}

/* a year of backups every 30 minutes: each tier keeps exactly as many as it says, every kept
 * backup says why, and the verdict does not depend on the input order */
static void test_year_of_half_hours(void **state)
{
    enum { N = 2 * 24 * 400 };
    struct retention_backup *b = calloc(N, sizeof *b), *rev = calloc(N, sizeof *rev);
    struct retention_verdict *v = calloc(N, sizeof *v), *rv = calloc(N, sizeof *rv);
    struct retention_policy p;
    char err[128];
    int64_t now = at("2026-12-03T21:45:00");
    size_t kept = 0, per_tier[RETENTION_TIERS] = {0};

    (void)state;
    assert_int_equal(retention_parse("hourly=24,daily=7,weekly=4,monthly=12", &p, err, sizeof err),
                     0);
    for (size_t i = 0; i < N; i++) {
        b[i] = (struct retention_backup){now - 900 - (int64_t)i * 1800, true};
        rev[N - 1 - i] = b[i];
    }
    assert_int_equal(retention_decide(&p, b, N, now, v), 0);
    assert_int_equal(retention_decide(&p, rev, N, now, rv), 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(v[i].keep, rv[N - 1 - i].keep);
        assert_int_equal(v[i].reasons, rv[N - 1 - i].reasons);
        kept += v[i].keep;
        for (int t = 0; t < RETENTION_TIERS; t++)
            per_tier[t] += (v[i].reasons & (RETENTION_KEEP_HOURLY << t)) != 0;
    }
    assert_int_equal(per_tier[0], 24);
    assert_int_equal(per_tier[1], 7);
    assert_int_equal(per_tier[2], 4);
    assert_int_equal(per_tier[3], 12);
    /* 24 hours + 6 more days + 3 more weeks (minus overlap) + 11 more months */
    assert_true(kept >= 24 + 6 && kept <= 24 + 7 + 4 + 12);
    assert_true(v[0].keep && (v[0].reasons & RETENTION_KEEP_NEWEST_GOOD));
    assert_false(v[N - 1].keep);
    free(b), free(rev), free(v), free(rv);
}

static void test_bad_args(void **state)
{
    struct retention_policy p = {.last = 1};
    struct retention_verdict v;

    (void)state;
    assert_int_equal(retention_decide(&p, NULL, 0, 0, NULL), 0);
    assert_int_equal(retention_decide(&p, NULL, 1, 0, &v), -22);
    assert_int_equal(retention_decide(NULL, NULL, 0, 0, NULL), -22);
    assert_int_equal(
        retention_decide(&p, &(struct retention_backup){0}, RETENTION_MAX_BACKUPS + 1, 0, &v), -22);
    /* extreme clocks do not overflow */
    struct retention_backup b[2] = {{INT64_MAX, true}, {INT64_MIN, true}};
    struct retention_verdict vv[2];
    assert_int_equal(retention_decide(&p, b, 2, INT64_MAX, vv), 0);
    assert_true(vv[0].keep);
    assert_false(vv[1].keep);
    assert_int_equal(retention_decide(&p, b, 2, INT64_MIN, vv), 0);
    assert_true(vv[0].keep && vv[0].reasons == RETENTION_KEEP_FUTURE);
    assert_true(vv[1].keep && (vv[1].reasons & RETENTION_KEEP_NEWEST_GOOD));
}

int main(void)
{
    enum { N = ARRAY_SIZE(rows), X = 5 };
    struct CMUnitTest tests[N + X];

    for (size_t i = 0; i < N; i++)
        tests[i] = (struct CMUnitTest){rows[i].name, run_row, NULL, NULL, &rows[i]};
    tests[N] = (struct CMUnitTest)cmocka_unit_test(test_parse);
    tests[N + 1] = (struct CMUnitTest)cmocka_unit_test(test_long_value_refused);
    tests[N + 2] = (struct CMUnitTest)cmocka_unit_test(test_periods_against_libc);
    tests[N + 3] = (struct CMUnitTest)cmocka_unit_test(test_year_of_half_hours);
    tests[N + 4] = (struct CMUnitTest)cmocka_unit_test(test_bad_args);
    return _cmocka_run_group_tests("retention", tests, N + X, NULL, NULL);
}
