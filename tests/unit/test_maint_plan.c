/* test_maint_plan.c - the maintenance decisions as data: who is due, who coordinates, the order
 * (followers one at a time, leader last after MoveLeader), NOSPACE recovery, HashKV revision
 * and comparison, size flags. One row per rule; the row's name says what it covers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "maint_plan.h"

/* rows leave trailing fields (done) out */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define MB (1000 * 1000)
#define A 0xa1u
#define B 0xb2u
#define C 0xc3u
#define L 0xd4u /* a learner */
#define Q (2000 * MB)

/* healthy voter led by A with db/in-use sizes */
#define V(mid, db, use)                                                                            \
    {                                                                                              \
        .id = (mid), .answered = true, .read_ok = true, .leader = A, .db_size = (db),              \
        .db_in_use = (use), .quota = Q, .raft_index = 1000, .applied_index = 1000, .revision = 500 \
    }

static const struct maint_plan_params params = {
    .min_free = 100 * MB, .threshold_pct = 45, .nospace_resume_pct = 80};

struct row {
    const char *name;
    struct maint_plan_member m[4];
    size_t n;
    uint64_t self;
    bool nospace, compact, compacted;
    enum maint_step step;
    /* .done comes after the expectations: rows that need it set it by name */
    uint64_t target; /* member ID for DEFRAG / MOVE_LEADER */
    const char *label;
    const char *reason_has;
    const bool *done;
};

static const bool done_b[4] = {false, true, false, false};

static const struct row rows[] = {
    {"nothing due",
     {V(A, 100 * MB, 90 * MB), V(B, 100 * MB, 90 * MB), V(C, 100 * MB, 90 * MB)},
     3,
     A,
     false,
     false,
     false,
     MAINT_IDLE,
     0,
     NULL,
     "nothing due"},
    {"follower due: defragmented",
     {V(A, 300 * MB, 290 * MB), V(B, 300 * MB, 100 * MB), V(C, 300 * MB, 290 * MB)},
     3,
     A,
     false,
     false,
     false,
     MAINT_DEFRAG,
     B,
     NULL,
     NULL},
    {"free below min-free: not due (45% but 90MB)",
     {V(A, 100 * MB, 10 * MB), V(B, 200 * MB, 110 * MB), V(C, 100 * MB, 90 * MB)},
     3,
     A,
     false,
     false,
     false,
     MAINT_IDLE,
     0,
     NULL,
     "nothing due"},
    {"free below threshold: not due (200MB free of 1GB)",
     {V(A, 1000 * MB, 800 * MB), V(B, 1000 * MB, 800 * MB), V(C, 1000 * MB, 800 * MB)},
     3,
     A,
     false,
     false,
     false,
     MAINT_IDLE,
     0,
     NULL,
     "nothing due"},
    {"exactly at both marks: due",
     {V(A, 100 * MB, 90 * MB), V(B, 100 * MB, 90 * MB), V(C, 1000 * MB, 550 * MB)},
     3,
     A,
     false,
     false,
     false,
     MAINT_DEFRAG,
     C,
     NULL,
     NULL},
    {"non-leader never acts",
     {V(A, 300 * MB, 10 * MB), V(B, 300 * MB, 10 * MB), V(C, 300 * MB, 10 * MB)},
     3,
     B,
     false,
     false,
     false,
     MAINT_IDLE,
     0,
     NULL,
     "not the leader"},
    {"most free follower first",
     {V(A, 300 * MB, 10 * MB), V(B, 300 * MB, 100 * MB), V(C, 400 * MB, 100 * MB)},
     3,
     A,
     false,
     false,
     false,
     MAINT_DEFRAG,
     C,
     NULL,
     NULL},
    {"leader due alone: move leadership first",
     {V(A, 300 * MB, 10 * MB), V(B, 300 * MB, 290 * MB), V(C, 300 * MB, 290 * MB)},
     3,
     A,
     false,
     false,
     false,
     MAINT_MOVE_LEADER,
     B,
     NULL,
     NULL},
    {"a voter busy or down: skip",
     {V(A, 300 * MB, 10 * MB),
      V(B, 300 * MB, 10 * MB),
      {.id = C, .answered = true, .read_ok = false, .leader = A}},
     3,
     A,
     false,
     false,
     false,
     MAINT_SKIP,
     0,
     "member_unavailable",
     "c3"},
    {"no quorum: skip",
     {V(A, 300 * MB, 10 * MB), {.id = B}, {.id = C}},
     3,
     A,
     false,
     false,
     false,
     MAINT_SKIP,
     0,
     "no_quorum",
     "no quorum"},
    {"learner due: never defragmented",
     {V(A, 100 * MB, 90 * MB),
      V(B, 100 * MB, 90 * MB),
      {.id = L,
       .learner = true,
       .answered = true,
       .read_ok = true,
       .leader = A,
       .db_size = 900 * MB,
       .db_in_use = 10 * MB}},
     3,
     A,
     false,
     false,
     false,
     MAINT_IDLE,
     0,
     NULL,
     "nothing due"},
    {"learner down does not block",
     {V(A, 100 * MB, 90 * MB), V(B, 300 * MB, 10 * MB), {.id = L, .learner = true}},
     3,
     A,
     false,
     false,
     false,
     MAINT_DEFRAG,
     B,
     NULL,
     NULL},
    {"leader due, followers lag: no target",
     {V(A, 300 * MB, 10 * MB),
      {.id = B,
       .answered = true,
       .read_ok = true,
       .leader = A,
       .db_size = 1,
       .db_in_use = 1,
       .raft_index = 1000,
       .applied_index = 10},
      {.id = C,
       .answered = true,
       .read_ok = true,
       .leader = A,
       .db_size = 1,
       .db_in_use = 1,
       .raft_index = 1000,
       .applied_index = 10}},
     3,
     A,
     false,
     false,
     false,
     MAINT_SKIP,
     0,
     "no_leader_target",
     NULL},
    {"NOSPACE: compact first",
     {V(A, 30 * MB, 20 * MB), V(B, 30 * MB, 20 * MB), V(C, 30 * MB, 20 * MB)},
     3,
     A,
     true,
     true,
     false,
     MAINT_COMPACT,
     0,
     NULL,
     "compact"},
    {"NOSPACE: small free space still defragmented",
     {V(A, 30 * MB, 29 * MB), V(B, 30 * MB, 20 * MB), V(C, 30 * MB, 29.5 * MB)},
     3,
     A,
     true,
     true,
     true,
     MAINT_DEFRAG,
     B,
     NULL,
     "NOSPACE"},
    {"NOSPACE: leader last",
     {V(A, 30 * MB, 20 * MB), V(B, 30 * MB, 29.5 * MB), V(C, 30 * MB, 29.5 * MB)},
     3,
     A,
     true,
     false,
     false,
     MAINT_MOVE_LEADER,
     B,
     NULL,
     NULL},
    {"NOSPACE: all defragmented, below 80%: disarm",
     {V(A, 100 * MB, 99.5 * MB), V(B, 100 * MB, 99.5 * MB), V(C, 100 * MB, 99.5 * MB)},
     3,
     A,
     true,
     false,
     false,
     MAINT_DISARM,
     0,
     NULL,
     NULL},
    {"NOSPACE: a follower above the mark, not yet defragmented: defragmented once",
     {V(A, 100 * MB, 99.5 * MB), V(B, 1600 * MB, 1599.5 * MB), V(C, 100 * MB, 99.5 * MB)},
     3,
     A,
     true,
     false,
     false,
     MAINT_DEFRAG,
     B,
     NULL,
     NULL},
    {"NOSPACE: a follower at 80% of quota, defragmented already: hold",
     {V(A, 100 * MB, 99.5 * MB), V(B, 1600 * MB, 1599.5 * MB), V(C, 100 * MB, 99.5 * MB)},
     3,
     A,
     true,
     false,
     false,
     MAINT_HOLD,
     0,
     "nospace_not_freed",
     "b2",
     done_b},
    {"NOSPACE: the leader above the mark without free space: no move, hold",
     {V(A, 1600 * MB, 1599.5 * MB), V(B, 100 * MB, 99.5 * MB), V(C, 100 * MB, 99.5 * MB)},
     3,
     A,
     true,
     false,
     false,
     MAINT_HOLD,
     0,
     "nospace_not_freed",
     "a1"},
    {"NOSPACE: quota unknown: hold",
     {V(A, 100 * MB, 99.5 * MB),
      {.id = B,
       .answered = true,
       .read_ok = true,
       .leader = A,
       .db_size = 100 * MB,
       .db_in_use = 100 * MB,
       .raft_index = 1000,
       .applied_index = 1000},
      V(C, 100 * MB, 99.5 * MB)},
     3,
     A,
     true,
     false,
     false,
     MAINT_HOLD,
     0,
     "quota_unknown",
     NULL},
    {"NOSPACE: a voter down: skip, nothing destructive",
     {V(A, 100 * MB, 10 * MB), V(B, 100 * MB, 10 * MB), {.id = C}},
     3,
     A,
     true,
     true,
     false,
     MAINT_SKIP,
     0,
     "member_unavailable",
     NULL},
    {"NOSPACE: not the leader: idle",
     {V(A, 100 * MB, 10 * MB), V(B, 100 * MB, 10 * MB), V(C, 100 * MB, 10 * MB)},
     3,
     C,
     true,
     true,
     false,
     MAINT_IDLE,
     0,
     NULL,
     "not the leader"},
};

static void test_row(void **state)
{
    const struct row *r = *state;
    struct maint_plan_facts f = {.self = r->self,
                                 .nospace = r->nospace,
                                 .compacted = r->compacted ? 500 : 0,
                                 .done = r->done,
                                 .members = r->m,
                                 .n = r->n};
    struct maint_plan_params p = params;
    p.nospace_compact = r->compact;
    struct maint_plan_decision d;
    maint_plan_next(&f, &p, &d);
    print_message("%s -> step %d target %zu label %s: %s\n", r->name, d.step, d.target,
                  d.label ? d.label : "-", d.reason);
    assert_int_equal(d.step, r->step);
    if (r->step == MAINT_DEFRAG || r->step == MAINT_MOVE_LEADER)
        assert_int_equal(r->m[d.target].id, r->target);
    if (r->label)
        assert_string_equal(d.label, r->label);
    if (r->reason_has)
        assert_non_null(strstr(d.reason, r->reason_has));
    if (r->step == MAINT_COMPACT)
        assert_int_equal(d.revision, 500);
}

static void test_hashkv_revision(void **state)
{
    (void)state;
    struct maint_plan_member m[3] = {{.answered = true, .revision = 90},
                                     {.answered = true, .revision = 80},
                                     {.answered = false, .revision = 10}};
    assert_int_equal(maint_plan_hashkv_revision(m, 3), 80);
    assert_int_equal(maint_plan_hashkv_revision(m + 2, 1), 0);
}

struct hrow {
    const char *name;
    struct maint_plan_hash h[5];
    size_t n, members;
    enum maint_hash_verdict v;
    bool named[5];
};

static const struct hrow hrows[] = {
    {"all equal",
     {{A, true, 7, 3}, {B, true, 7, 3}, {C, true, 7, 3}},
     3,
     3,
     MAINT_HASH_CONSISTENT,
     {0}},
    {"one differs: named",
     {{A, true, 7, 3}, {B, true, 9, 3}, {C, true, 7, 3}},
     3,
     3,
     MAINT_HASH_DIVERGENT,
     {false, true, false}},
    {"three differ: inconsistent, nobody named",
     {{A, true, 7, 3}, {B, true, 8, 3}, {C, true, 9, 3}},
     3,
     3,
     MAINT_HASH_INCONSISTENT,
     {0}},
    {"other compact revision not compared",
     {{A, true, 7, 3}, {B, true, 9, 4}, {C, true, 7, 3}},
     3,
     3,
     MAINT_HASH_CONSISTENT,
     {0}},
    {"one answer only: unknown",
     {{A, true, 7, 3}, {B, false, 0, 0}, {C, false, 0, 0}},
     3,
     3,
     MAINT_HASH_UNKNOWN,
     {0}},
    {"two of three answer, differ: no majority",
     {{A, true, 7, 3}, {B, true, 8, 3}, {C, false, 0, 0}},
     3,
     3,
     MAINT_HASH_INCONSISTENT,
     {0}},
    {"five members, two differ from three",
     {{A, true, 7, 3}, {B, true, 8, 3}, {C, true, 7, 3}, {L, true, 7, 3}, {0xe5, true, 8, 3}},
     5,
     5,
     MAINT_HASH_DIVERGENT,
     {false, true, false, false, true}},
};

static void test_hash_row(void **state)
{
    const struct hrow *r = *state;
    bool named[5];
    enum maint_hash_verdict v = maint_plan_hash_compare(r->h, r->n, r->members, named);
    print_message("%s -> %s\n", r->name, maint_plan_hash_verdict_name(v));
    assert_int_equal(v, r->v);
    for (size_t i = 0; i < r->n; i++)
        assert_int_equal(named[i], r->named[i]);
}

/* The local member's divergent marker: written only when a majority names it. */
static void test_marker(void **state)
{
    (void)state;
    bool named[5];
    uint32_t maj = 0;
    const struct hrow *one = &hrows[1], *three = &hrows[2], *two = &hrows[5], *all = &hrows[0];

    assert_int_equal(maint_plan_hash_compare(one->h, one->n, one->members, named),
                     MAINT_HASH_DIVERGENT);
    assert_int_equal(maint_plan_marker(one->h, one->n, MAINT_HASH_DIVERGENT, named, B, &maj),
                     MAINT_MARKER_WRITE);
    assert_int_equal(maj, 7);
    assert_int_equal(maint_plan_marker(one->h, one->n, MAINT_HASH_DIVERGENT, named, A, &maj),
                     MAINT_MARKER_REMOVE);
    assert_int_equal(maint_plan_marker(one->h, one->n, MAINT_HASH_DIVERGENT, named, 0x99, &maj),
                     MAINT_MARKER_LEAVE); /* not listed */
    /* no majority: nobody's marker changes */
    enum maint_hash_verdict v = maint_plan_hash_compare(three->h, three->n, three->members, named);
    assert_int_equal(v, MAINT_HASH_INCONSISTENT);
    for (size_t i = 0; i < three->n; i++)
        assert_int_equal(maint_plan_marker(three->h, three->n, v, named, three->h[i].id, &maj),
                         MAINT_MARKER_LEAVE);
    v = maint_plan_hash_compare(two->h, two->n, two->members, named);
    assert_int_equal(v, MAINT_HASH_INCONSISTENT);
    assert_int_equal(maint_plan_marker(two->h, two->n, v, named, A, &maj), MAINT_MARKER_LEAVE);
    assert_int_equal(maint_plan_marker(two->h, two->n, v, named, C, &maj), MAINT_MARKER_LEAVE);
    v = maint_plan_hash_compare(all->h, all->n, all->members, named);
    assert_int_equal(maint_plan_marker(all->h, all->n, v, named, C, &maj), MAINT_MARKER_REMOVE);
    /* unknown (too few answers): leave */
    v = maint_plan_hash_compare(hrows[4].h, hrows[4].n, hrows[4].members, named);
    assert_int_equal(maint_plan_marker(hrows[4].h, hrows[4].n, v, named, A, &maj),
                     MAINT_MARKER_LEAVE);
}

static void test_parse_size(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(maint_plan_parse_size("1048576", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(maint_plan_parse_size("100MB", &v), 0);
    assert_int_equal(v, 100000000);
    assert_int_equal(maint_plan_parse_size("100MiB", &v), 0);
    assert_int_equal(v, 104857600);
    assert_int_equal(maint_plan_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(maint_plan_parse_size("2GiB", &v), 0);
    assert_int_equal(v, INT64_C(2147483648));
    assert_int_equal(maint_plan_parse_size("", &v), -EINVAL);
    assert_int_equal(maint_plan_parse_size("MB", &v), -EINVAL);
    assert_int_equal(maint_plan_parse_size("10 MB", &v), -EINVAL);
    assert_int_equal(maint_plan_parse_size("-1", &v), -EINVAL);
    assert_int_equal(maint_plan_parse_size("10mb", &v), -EINVAL);
    assert_int_equal(maint_plan_parse_size("99999999999999999999", &v), -EINVAL);
    assert_int_equal(maint_plan_parse_size("9999999999TiB", &v), -EINVAL);
}

static void test_due_edges(void **state)
{
    (void)state;
    struct maint_plan_member m = V(A, 0, 0);
    assert_false(maint_plan_due(&m, &params, false)); /* empty db */
    m.db_size = 200 * MB;
    m.db_in_use = 300 * MB; /* nonsense answer */
    assert_false(maint_plan_due(&m, &params, false));
    m.db_in_use = 0;
    m.answered = false; /* not answering */
    assert_false(maint_plan_due(&m, &params, false));
}

int main(void)
{
    struct CMUnitTest tests[64];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        tests[n++] =
            (struct CMUnitTest){rows[i].name, test_row, NULL, NULL, (void *)(uintptr_t)&rows[i]};
    for (size_t i = 0; i < sizeof(hrows) / sizeof(hrows[0]); i++)
        tests[n++] = (struct CMUnitTest){hrows[i].name, test_hash_row, NULL, NULL,
                                         (void *)(uintptr_t)&hrows[i]};
    tests[n++] = (struct CMUnitTest){"hashkv revision", test_hashkv_revision, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"size flags", test_parse_size, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"divergent marker", test_marker, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"due edges", test_due_edges, NULL, NULL, NULL};
    return _cmocka_run_group_tests("maint_plan", tests, n, NULL, NULL);
}
