/* test_backup_turn.c - the backup turn (rank of the healthy voters, due time, refusals) and the
 * backup object names, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <time.h>

#include "backup.h"
#include "backup_turn.h"

#define S 1000
#define I (60 * S) /* interval */
#define G (15 * S) /* grace */

/* three voters 1, 2, 3; 2 leads */
static const struct backup_turn_member healthy3[] = {
    {1, true, true, 100}, {2, true, true, 100}, {3, true, true, 100}};

struct row {
    const char *what;
    const struct backup_turn_member *m;
    size_t n;
    uint64_t self, leader;
    int64_t now, newest;
    enum backup_turn_verdict want;
    int want_rank;
    int64_t due_since; /* when the agent saw the backup due (0: long ago; -1: not yet) */
};

static const struct backup_turn_member one_down[] = {
    {1, true, true, 100}, {2, true, true, 100}, {3, true, false, 0}};
static const struct backup_turn_member two_down[] = {
    {1, true, true, 100}, {2, true, false, 0}, {3, true, false, 0}};
static const struct backup_turn_member learner[] = {
    {1, true, true, 100}, {2, true, true, 100}, {3, true, true, 100}, {4, false, true, 100}};
static const struct backup_turn_member lagging[] = {
    {1, true, true, 100}, {2, true, true, 5000}, {3, true, true, 5000}};

static const struct row rows[] = {
    {"rank 0 (lowest non-leader) due at interval", healthy3, 3, 1, 2, 1000 * S, 1000 * S - I,
     BACKUP_TURN_GO, 0, 0},
    {"rank 0 not due before interval", healthy3, 3, 1, 2, 1000 * S, 1000 * S - I + 1,
     BACKUP_TURN_NOT_DUE, 0, 0},
    {"rank 1 waits interval + grace", healthy3, 3, 3, 2, 1000 * S, 1000 * S - I - G + 1,
     BACKUP_TURN_NOT_DUE, 1, 0},
    {"rank 1 goes after interval + grace", healthy3, 3, 3, 2, 1000 * S, 1000 * S - I - G,
     BACKUP_TURN_GO, 1, 0},
    {"leader is last (rank 2)", healthy3, 3, 2, 2, 1000 * S, 1000 * S - I - 2 * G + 1,
     BACKUP_TURN_NOT_DUE, 2, 0},
    {"leader goes after interval + 2 grace", healthy3, 3, 2, 2, 1000 * S, 1000 * S - I - 2 * G,
     BACKUP_TURN_GO, 2, 0},
    {"empty store: rank 0 at once", healthy3, 3, 1, 2, 500 * S, -1, BACKUP_TURN_GO, 0, 0},
    {"empty store: rank 1 after a grace", healthy3, 3, 3, 2, 500 * S, -1, BACKUP_TURN_NOT_DUE, 1,
     0},
    {"unhealthy member moves others up", one_down, 3, 2, 1, 1000 * S, 1000 * S - I, BACKUP_TURN_GO,
     0, 0},
    {"unhealthy self", one_down, 3, 3, 1, 1000 * S, 0, BACKUP_TURN_UNHEALTHY, -1, 0},
    {"no quorum", two_down, 3, 1, 1, 1000 * S, 0, BACKUP_TURN_NO_QUORUM, 0, 0},
    {"no leader", healthy3, 3, 1, 0, 1000 * S, 0, BACKUP_TURN_NO_LEADER, 0, 0},
    {"learner never", learner, 4, 4, 2, 1000 * S, 0, BACKUP_TURN_NOT_VOTER, -1, 0},
    {"learner does not count for ranks", learner, 4, 3, 2, 1000 * S, 1000 * S - I - G,
     BACKUP_TURN_GO, 1, 0},
    {"not in the table", healthy3, 3, 9, 2, 1000 * S, 0, BACKUP_TURN_NOT_VOTER, -1, 0},
    {"lagging member", lagging, 3, 1, 2, 1000 * S, 0, BACKUP_TURN_LAGGING, 0, 0},
    {"clock behind the newest backup", healthy3, 3, 1, 2, 1000 * S, 1001 * S, BACKUP_TURN_NOT_DUE,
     0, 0},
    {"after a gap: rank 0 at once", healthy3, 3, 1, 2, 1000 * S, 1000 * S - 10 * I, BACKUP_TURN_GO,
     0, 1000 * S},
    {"after a gap: rank 1 waits a grace from seeing it due", healthy3, 3, 3, 2, 1000 * S,
     1000 * S - 10 * I, BACKUP_TURN_NOT_DUE, 1, 1000 * S - G + 1},
    {"after a gap: rank 1 a grace later", healthy3, 3, 3, 2, 1000 * S, 1000 * S - 10 * I,
     BACKUP_TURN_GO, 1, 1000 * S - G},
    {"after a gap: the leader two graces later", healthy3, 3, 2, 2, 1000 * S, 1000 * S - 10 * I,
     BACKUP_TURN_NOT_DUE, 2, 1000 * S - G},
    {"rank 1 never saw it due", healthy3, 3, 3, 2, 1000 * S, 1000 * S - 10 * I, BACKUP_TURN_NOT_DUE,
     1, -1},
};

static void test_turn_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct backup_turn_input in = {.members = r->m,
                                       .n_members = r->n,
                                       .self = r->self,
                                       .leader = r->leader,
                                       .max_lag = 1000,
                                       .now_ms = r->now,
                                       .newest_ms = r->newest,
                                       .start_ms = 500 * S,
                                       .interval_ms = I,
                                       .grace_ms = G,
                                       .due_since_ms = r->due_since};
        int rank = 99;
        enum backup_turn_verdict v = backup_turn_decide(&in, &rank);
        if (v != r->want || rank != r->want_rank)
            fail_msg("%s: verdict %s rank %d, want %s rank %d", r->what, backup_turn_verdict_str(v),
                     rank, backup_turn_verdict_str(r->want), r->want_rank);
    }
}

/* Exactly one agent is due at any moment of the first grace after it became due: on time
 * (the newest backup one interval old) and after a long gap (ten intervals old when the agents
 * first look: every rank past its due time at once). Each agent keeps its due_since between
 * ticks as backup.c does. */
static void test_one_due(void **state)
{
    static const int64_t newest[] = {1000 * S - I, 1000 * S - 10 * I};
    (void)state;
    for (size_t k = 0; k < sizeof newest / sizeof newest[0]; k++) {
        int64_t due_since[4] = {-1, -1, -1, -1};
        for (int64_t now = 1000 * S; now < 1000 * S + G; now += S) {
            int due = 0;
            for (uint64_t self = 1; self <= 3; self++) {
                struct backup_turn_input in = {.members = healthy3,
                                               .n_members = 3,
                                               .self = self,
                                               .leader = 2,
                                               .max_lag = 10,
                                               .now_ms = now,
                                               .newest_ms = newest[k],
                                               .interval_ms = I,
                                               .grace_ms = G,
                                               .due_since_ms = due_since[self]};
                in.due_since_ms = due_since[self] = backup_turn_due_since(&in);
                due += backup_turn_decide(&in, NULL) == BACKUP_TURN_GO;
            }
            if (due != 1)
                fail_msg("newest %" PRId64 " s ago, %" PRId64
                         " s after the first look: %d agents due",
                         (1000 * S - newest[k]) / S, (now - 1000 * S) / S, due);
        }
    }
}

static void test_names(void **state)
{
    (void)state;
    char n[128];
    assert_int_equal(
        backup_name_format(n, sizeof n, 0xabcdef0123456789ull, 1764800000, 1234, true, true), 0);
    assert_string_equal(n, "abcdef0123456789/20251203T221320Z-rev1234.db.zst.age");
    time_t t;
    int64_t rev;
    assert_int_equal(backup_name_parse(n, &t, &rev), 0);
    assert_int_equal(t, 1764800000);
    assert_int_equal(rev, 1234);
    assert_int_equal(backup_name_format(n, sizeof n, 1, 0, 7, false, false), 0);
    assert_string_equal(n, "0000000000000001/19700101T000000Z-rev7.db");
    assert_int_equal(backup_name_parse(n, &t, &rev), 0);
    assert_int_equal(backup_name_format(n, 20, 1, 0, 7, false, false), -ENAMETOOLONG);
    static const char *const bad[] = {"x/20251203T221320Z-rev1234.db.manifest.json",
                                      "x/20251203T221320Z-rev.db",
                                      "x/20251203T221320Z-rev12a.db",
                                      "x/2025120xT221320Z-rev1.db",
                                      "x/20251303T221320Z-rev1.db",
                                      "x/20251203T221320Z-rev1.db.gz",
                                      "",
                                      "x/20251203T221320Z-rev1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (backup_name_parse(bad[i], &t, &rev) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
}

static void test_redact(void **state)
{
    (void)state;
    char o[256];
    backup_url_redact("s3://b/p?X-Amz-Signature=abc&t=1", o, sizeof o);
    assert_string_equal(o, "s3://b/p");
    backup_url_redact("https://user:pass@host/x?y#z", o, sizeof o);
    assert_string_equal(o, "https://host/x");
    backup_url_redact("file:///var/backups", o, sizeof o);
    assert_string_equal(o, "file:///var/backups");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turn_table),
        cmocka_unit_test(test_one_due),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
