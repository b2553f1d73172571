/* test_decide.c - reset-member's decision table as data: every row of issue 3's table and
 * every edge (quorum arithmetic, learners, duplicate peer URLs, interrupted runs, locks).
 * One cmocka test per row; the row's name says what it covers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "array.h"
#include "decide.h"

#define ROW_MAX_MEMBERS 6

/* member IDs and cluster IDs used in the rows */
#define OURS 0xa1u  /* our data's member ID */
#define NEWID 0xd4u /* an entry with our peer URL under another ID */
#define B 0xb2u
#define C 0xc3u
#define E 0xe5u
#define F 0xf6u
#define CID 0x100u
#define OTHERCID 0x200u

/* id, started, peer URL ours, healthy, learner */
#define M(id, st, ours, ok, lrn)                                                                   \
    {                                                                                              \
        (id), (st), (ours), (ok), (lrn)                                                            \
    }
#define UP(id) M(id, true, false, true, false)     /* healthy started voter */
#define DOWN(id) M(id, true, false, false, false)  /* started voter, not answering */
#define US_UP M(OURS, true, true, false, false)    /* our own old entry (we are down) */
#define US_NEW M(NEWID, false, true, false, false) /* unstarted entry with our URL */

enum expect_flags {
    X_REMOVE = 1,
    X_ADD = 2,
    X_LEARNER = 4,
    X_MOVE = 8,
    X_NEEDS_HEALTH = 16,
};

struct row {
    const char *name;
    /* facts */
    enum decide_data data;
    bool ids_known;
    uint64_t data_cid;
    bool torn, locked, reachable, answered_error;
    uint64_t cid;
    struct decide_member members[ROW_MAX_MEMBERS];
    size_t n;
    bool no_probe; /* health not probed */
    bool no_learner;
    bool restore_req, restorer, restore_done;
    uint64_t marker_cid;
    /* divergent marker (HashKV): member and cluster it names; 0 = no marker */
    uint64_t div_mid, div_cid;
    /* expected */
    enum decide_action action;
    enum decide_state state;
    unsigned flags;
    uint64_t remove_id;
    uint64_t member_id;
};

#define EMPTY .data = DECIDE_DATA_EMPTY
#define VALID .data = DECIDE_DATA_VALID, .ids_known = true, .data_cid = CID
#define CORRUPT .data = DECIDE_DATA_CORRUPT, .ids_known = true, .data_cid = CID
#define REACH .reachable = true, .cid = CID
#define OLD .data = DECIDE_DATA_VALID, .ids_known = true, .data_cid = OTHERCID /* lost cluster */
#define RESTORER .restore_req = true, .restorer = true
#define PEER .restore_req = true
#define MEMBERS(...)                                                                               \
    .members = {__VA_ARGS__},                                                                      \
    .n = sizeof((struct decide_member[]){__VA_ARGS__}) / sizeof(struct decide_member)
#define EXISTING .state = DECIDE_STATE_EXISTING
#define REFUSED .action = DECIDE_REFUSE, .state = DECIDE_STATE_NONE

static struct row rows[] = {
    /* ---- empty data ---- */
    {"empty_unreachable_bootstrap", EMPTY, .action = DECIDE_BOOTSTRAP, .state = DECIDE_STATE_NEW},
    {"empty_nobody_started_bootstrap", EMPTY, REACH,
     MEMBERS(M(B, false, false, false, false), M(C, false, false, false, false),
             M(NEWID, false, true, false, false)),
     .action = DECIDE_BOOTSTRAP, .state = DECIDE_STATE_NEW},
    {"empty_self_unstarted_join", EMPTY, REACH, MEMBERS(UP(B), UP(C), US_NEW),
     .action = DECIDE_JOIN, EXISTING, .member_id = NEWID},
    {"empty_self_unstarted_join_needs_no_health", EMPTY, REACH, MEMBERS(UP(B), DOWN(C), US_NEW),
     .no_probe = true, .action = DECIDE_JOIN, EXISTING, .member_id = NEWID},
    {"empty_self_unstarted_join_even_without_quorum", EMPTY, REACH, MEMBERS(UP(B), DOWN(C), US_NEW),
     .action = DECIDE_JOIN, EXISTING, .member_id = NEWID},
    {"empty_self_started_quorum_readd", EMPTY, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .action = DECIDE_READD, EXISTING, .flags = X_REMOVE | X_ADD | X_LEARNER, .remove_id = OURS},
    {"empty_self_started_no_quorum_refuse", EMPTY, REACH, MEMBERS(UP(B), DOWN(C), US_UP), REFUSED},
    {"empty_self_started_not_probed_needs_health", EMPTY, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .no_probe = true, REFUSED, .flags = X_NEEDS_HEALTH},
    {"empty_self_absent_quorum_readd", EMPTY, REACH, MEMBERS(UP(B), UP(C)), .action = DECIDE_READD,
     EXISTING, .flags = X_ADD | X_LEARNER},
    {"empty_self_absent_no_quorum_refuse", EMPTY, REACH, MEMBERS(UP(B), DOWN(C)), REFUSED},
    {"empty_self_absent_voter_readd", EMPTY, REACH, MEMBERS(UP(B), UP(C)), .no_learner = true,
     .action = DECIDE_READD, EXISTING, .flags = X_ADD},
    {"empty_self_started_voter_readd", EMPTY, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .no_learner = true, .action = DECIDE_READD, EXISTING, .flags = X_REMOVE | X_ADD,
     .remove_id = OURS},
    /* 3 voters (not us), 2 healthy: quorum now, but a 4th unstarted voter would leave 2 of 4 */
    {"empty_voter_add_would_lose_quorum_refuse", EMPTY, REACH, MEMBERS(UP(B), UP(C), DOWN(E)),
     .no_learner = true, REFUSED},
    {"empty_learner_add_keeps_quorum_readd", EMPTY, REACH, MEMBERS(UP(B), UP(C), DOWN(E)),
     .action = DECIDE_READD, EXISTING, .flags = X_ADD | X_LEARNER},
    {"empty_other_learner_pending_refuse", EMPTY, REACH,
     MEMBERS(UP(B), UP(C), M(E, true, false, true, true)), REFUSED},
    {"empty_own_old_learner_replaced_readd", EMPTY, REACH,
     MEMBERS(UP(B), UP(C), M(OURS, true, true, false, true)), .action = DECIDE_READD, EXISTING,
     .flags = X_REMOVE | X_ADD | X_LEARNER, .remove_id = OURS},
    {"empty_learners_do_not_make_quorum_refuse", EMPTY, REACH,
     MEMBERS(UP(B), DOWN(C), M(E, true, false, true, true)), REFUSED},
    {"empty_url_listed_twice_refuse", EMPTY, REACH,
     MEMBERS(UP(B), UP(C), US_UP, M(NEWID, false, true, false, false)), REFUSED},
    /* a learner behind the service refused MemberList: a cluster exists */
    {"empty_unreachable_but_answered_refuse", EMPTY, .answered_error = true, REFUSED},
    /* ---- valid data ---- */
    {"valid_unreachable_but_answered_keep", VALID, .answered_error = true, .action = DECIDE_KEEP,
     EXISTING, .member_id = OURS},
    {"corrupt_unreachable_but_answered_refuse", CORRUPT, .answered_error = true, REFUSED},
    {"valid_listed_keep", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP), .action = DECIDE_KEEP,
     EXISTING, .member_id = OURS},
    {"valid_listed_keep_needs_no_health", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .no_probe = true, .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"valid_listed_no_quorum_keep", VALID, REACH, MEMBERS(DOWN(B), DOWN(C), US_UP),
     .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"valid_listed_learner_keep", VALID, REACH,
     MEMBERS(UP(B), UP(C), M(OURS, true, true, false, true)), .action = DECIDE_KEEP, EXISTING,
     .member_id = OURS},
    {"valid_listed_unstarted_keep", VALID, REACH,
     MEMBERS(UP(B), UP(C), M(OURS, false, true, false, false)), .action = DECIDE_KEEP, EXISTING,
     .member_id = OURS},
    {"valid_unreachable_keep", VALID, .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"valid_other_cluster_refuse", VALID, .reachable = true, .cid = OTHERCID,
     MEMBERS(UP(B), UP(C), US_UP), REFUSED},
    {"valid_removed_quorum_reset", VALID, REACH, MEMBERS(UP(B), UP(C)), .action = DECIDE_RESET,
     EXISTING, .flags = X_ADD | X_LEARNER | X_MOVE},
    {"valid_removed_not_probed_needs_health", VALID, REACH, MEMBERS(UP(B), UP(C)), .no_probe = true,
     REFUSED, .flags = X_NEEDS_HEALTH},
    /* kill -9 after MemberAdd, before the move: reuse the entry, no second add */
    {"valid_removed_unstarted_entry_reset_reuse", VALID, REACH, MEMBERS(UP(B), UP(C), US_NEW),
     .action = DECIDE_RESET, EXISTING, .flags = X_MOVE, .member_id = NEWID},
    {"valid_removed_no_quorum_refuse", VALID, REACH, MEMBERS(UP(B), DOWN(C)), REFUSED},
    {"valid_removed_unstarted_entry_no_quorum_refuse", VALID, REACH,
     MEMBERS(UP(B), DOWN(C), US_NEW), REFUSED},
    {"valid_removed_url_taken_by_started_refuse", VALID, REACH,
     MEMBERS(UP(B), UP(C), M(NEWID, true, true, true, false)), REFUSED},
    {"valid_listed_url_under_other_id_refuse", VALID, REACH,
     MEMBERS(UP(B), M(OURS, true, false, false, false), M(NEWID, false, true, false, false)),
     REFUSED},
    {"valid_url_listed_twice_refuse", VALID, REACH,
     MEMBERS(UP(B), UP(C), US_NEW, M(E, false, true, false, false)), REFUSED},
    {"valid_torn_quorum_reset", VALID, .torn = true, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .action = DECIDE_RESET, EXISTING, .flags = X_REMOVE | X_ADD | X_LEARNER | X_MOVE,
     .remove_id = OURS},
    {"valid_torn_not_probed_needs_health", VALID, .torn = true, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .no_probe = true, REFUSED, .flags = X_NEEDS_HEALTH},
    {"valid_torn_no_quorum_keep", VALID, .torn = true, REACH, MEMBERS(UP(B), DOWN(C), US_UP),
     .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"valid_torn_unreachable_keep", VALID, .torn = true, .action = DECIDE_KEEP, EXISTING,
     .member_id = OURS},
    {"valid_ids_unknown_refuse", .data = DECIDE_DATA_VALID, REFUSED},
    /* ---- corrupt data ---- */
    {"corrupt_listed_quorum_reset", CORRUPT, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .action = DECIDE_RESET, EXISTING, .flags = X_REMOVE | X_ADD | X_LEARNER | X_MOVE,
     .remove_id = OURS},
    {"corrupt_listed_quorum_voter_reset", CORRUPT, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .no_learner = true, .action = DECIDE_RESET, EXISTING, .flags = X_REMOVE | X_ADD | X_MOVE,
     .remove_id = OURS},
    {"corrupt_not_listed_quorum_reset", CORRUPT, REACH, MEMBERS(UP(B), UP(C)),
     .action = DECIDE_RESET, EXISTING, .flags = X_ADD | X_LEARNER | X_MOVE},
    {"corrupt_unstarted_entry_reset_reuse", CORRUPT, REACH, MEMBERS(UP(B), UP(C), US_NEW),
     .action = DECIDE_RESET, EXISTING, .flags = X_MOVE, .member_id = NEWID},
    {"corrupt_ids_unknown_url_started_reset", .data = DECIDE_DATA_CORRUPT, REACH,
     MEMBERS(UP(B), UP(C), M(NEWID, true, true, false, false)), .action = DECIDE_RESET, EXISTING,
     .flags = X_REMOVE | X_ADD | X_LEARNER | X_MOVE, .remove_id = NEWID},
    {"corrupt_ids_unknown_not_listed_reset", .data = DECIDE_DATA_CORRUPT, REACH,
     MEMBERS(UP(B), UP(C)), .action = DECIDE_RESET, EXISTING, .flags = X_ADD | X_LEARNER | X_MOVE},
    {"corrupt_no_quorum_refuse", CORRUPT, REACH, MEMBERS(UP(B), DOWN(C), US_UP), REFUSED},
    {"corrupt_not_probed_needs_health", CORRUPT, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .no_probe = true, REFUSED, .flags = X_NEEDS_HEALTH},
    {"corrupt_unreachable_refuse", CORRUPT, REFUSED},
    {"corrupt_other_cluster_refuse", CORRUPT, .reachable = true, .cid = OTHERCID,
     MEMBERS(UP(B), UP(C), US_UP), REFUSED},
    {"corrupt_url_taken_by_started_refuse", CORRUPT, REACH,
     MEMBERS(UP(B), UP(C), M(NEWID, true, true, true, false)), REFUSED},
    {"corrupt_other_learner_pending_refuse", CORRUPT, REACH,
     MEMBERS(UP(B), UP(C), US_UP, M(E, true, false, true, true)), REFUSED},
    /* ---- quorum arithmetic: healthy voters other than us > voters / 2 ---- */
    {"quorum_5_voters_3_healthy_others", CORRUPT, REACH,
     MEMBERS(UP(B), UP(C), UP(E), DOWN(F), US_UP), .action = DECIDE_RESET, EXISTING,
     .flags = X_REMOVE | X_ADD | X_LEARNER | X_MOVE, .remove_id = OURS},
    {"quorum_5_voters_2_healthy_others", CORRUPT, REACH,
     MEMBERS(UP(B), UP(C), DOWN(E), DOWN(F), US_UP), REFUSED},
    {"quorum_4_voters_2_healthy_others", CORRUPT, REACH, MEMBERS(UP(B), UP(C), DOWN(E), US_UP),
     REFUSED},
    {"quorum_single_member_cluster_is_us", CORRUPT, REACH, MEMBERS(US_UP), REFUSED},
    {"quorum_own_health_never_counts", CORRUPT, REACH,
     MEMBERS(UP(B), DOWN(C), M(OURS, true, true, true, false)), REFUSED},
    /* ---- guards ---- */
    {"unreadable_data_refuse", .data = DECIDE_DATA_UNREADABLE, REACH, MEMBERS(UP(B), UP(C), US_UP),
     REFUSED},
    {"unreadable_data_unreachable_refuse", .data = DECIDE_DATA_UNREADABLE, REFUSED},
    {"locked_data_dir_refuse", VALID, .locked = true, REACH, MEMBERS(UP(B), UP(C), US_UP), REFUSED},
    /* ---- restore (issue 6): the restorer restores a one-member cluster, peers rejoin it ---- */
    {"restore_restorer_unreachable_restore", CORRUPT, RESTORER, .action = DECIDE_RESTORE,
     .state = DECIDE_STATE_NEW},
    {"restore_restorer_empty_unreachable_restore", EMPTY, RESTORER, .action = DECIDE_RESTORE,
     .state = DECIDE_STATE_NEW},
    {"restore_restorer_answered_error_restore", VALID, .answered_error = true, RESTORER,
     .action = DECIDE_RESTORE, .state = DECIDE_STATE_NEW},
    {"restore_restorer_no_quorum_restore", CORRUPT, REACH, MEMBERS(UP(B), DOWN(C), US_UP), RESTORER,
     .action = DECIDE_RESTORE, .state = DECIDE_STATE_NEW},
    {"restore_restorer_beside_quorum_refuse", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP), RESTORER,
     REFUSED},
    {"restore_restorer_not_probed_needs_health", VALID, REACH, MEMBERS(DOWN(B), DOWN(C), US_UP),
     .no_probe = true, RESTORER, REFUSED, .flags = X_NEEDS_HEALTH},
    {"restore_restorer_unreadable_refuse", .data = DECIDE_DATA_UNREADABLE, RESTORER, REFUSED},
    {"restore_restorer_locked_refuse", VALID, .locked = true, RESTORER, REFUSED},
    {"restore_restorer_done_keep", VALID, RESTORER, .restore_done = true, .marker_cid = CID,
     .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"restore_restorer_done_listed_keep", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP), RESTORER,
     .restore_done = true, .marker_cid = CID, .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    /* a marker of another cluster (e.g. the data dir was swapped since) is not this restore */
    {"restore_restorer_marker_other_cluster_restore", VALID, RESTORER, .restore_done = true,
     .marker_cid = OTHERCID, .action = DECIDE_RESTORE, .state = DECIDE_STATE_NEW},
    /* data lost after the restore, the restored cluster answers: rejoin it, never restore again */
    {"restore_restorer_done_empty_cluster_matches_readd", EMPTY, REACH, MEMBERS(UP(B), UP(C)),
     RESTORER, .restore_done = true, .marker_cid = CID, .action = DECIDE_READD, EXISTING,
     .flags = X_ADD | X_LEARNER},
    {"restore_peer_unreachable_waits_refuse", OLD, PEER, REFUSED},
    {"restore_peer_empty_unreachable_never_bootstraps", EMPTY, PEER, REFUSED},
    {"restore_peer_answered_error_refuse", EMPTY, .answered_error = true, PEER, REFUSED},
    {"restore_peer_old_data_reset_learner", OLD, REACH, MEMBERS(UP(B)), PEER,
     .action = DECIDE_RESET, EXISTING, .flags = X_ADD | X_LEARNER | X_MOVE},
    {"restore_peer_old_corrupt_data_reset", .data = DECIDE_DATA_CORRUPT, .ids_known = true,
     .data_cid = OTHERCID, REACH, MEMBERS(UP(B)), PEER, .action = DECIDE_RESET, EXISTING,
     .flags = X_ADD | X_LEARNER | X_MOVE},
    {"restore_peer_old_data_not_probed_needs_health", OLD, REACH, MEMBERS(UP(B)), .no_probe = true,
     PEER, REFUSED, .flags = X_NEEDS_HEALTH},
    {"restore_peer_old_data_no_quorum_refuse", OLD, REACH, MEMBERS(DOWN(B)), PEER, REFUSED},
    /* etcd allows one learner: the second peer waits for the first one's promotion */
    {"restore_peer_second_learner_refuse", OLD, REACH,
     MEMBERS(UP(B), M(E, true, false, true, true)), PEER, REFUSED},
    /* a voter added to a one-member cluster leaves 1 of 2 until it starts (etcd's strict
     * reconfig check refuses it too) */
    {"restore_peer_voter_to_one_member_refuse", OLD, REACH, MEMBERS(UP(B)), .no_learner = true,
     PEER, REFUSED},
    {"restore_peer_voter_to_two_members_reset", OLD, REACH, MEMBERS(UP(B), UP(C)),
     .no_learner = true, PEER, .action = DECIDE_RESET, EXISTING, .flags = X_ADD | X_MOVE},
    /* killed after MemberAdd: become that entry */
    {"restore_peer_unstarted_entry_reuse", OLD, REACH,
     MEMBERS(UP(B), M(NEWID, false, true, false, true)), PEER, .action = DECIDE_RESET, EXISTING,
     .flags = X_MOVE, .member_id = NEWID},
    {"restore_peer_url_started_refuse", OLD, REACH,
     MEMBERS(UP(B), M(NEWID, true, true, true, false)), PEER, REFUSED},
    {"restore_peer_empty_readd", EMPTY, REACH, MEMBERS(UP(B)), PEER, .action = DECIDE_READD,
     EXISTING, .flags = X_ADD | X_LEARNER},
    {"restore_peer_empty_unstarted_join", EMPTY, REACH, MEMBERS(UP(B), US_NEW), PEER,
     .action = DECIDE_JOIN, EXISTING, .member_id = NEWID},
    {"restore_peer_same_cluster_keep", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP), PEER,
     .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    /* after joining, a full outage: the marker says our data is the restored cluster's */
    {"restore_peer_done_unreachable_keep", VALID, PEER, .restore_done = true, .marker_cid = CID,
     .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"restore_peer_marker_of_other_cluster_waits_refuse", VALID, PEER, .restore_done = true,
     .marker_cid = OTHERCID, REFUSED},
    /* ---- divergent marker: valid-looking data HashKV named divergent ---- */
    {"divergent_listed_quorum_reset", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP), .div_mid = OURS,
     .div_cid = CID, .action = DECIDE_RESET, EXISTING,
     .flags = X_REMOVE | X_ADD | X_LEARNER | X_MOVE, .remove_id = OURS},
    {"divergent_listed_no_quorum_refuse", VALID, REACH, MEMBERS(UP(B), DOWN(C), US_UP),
     .div_mid = OURS, .div_cid = CID, REFUSED},
    {"divergent_unreachable_refuse", VALID, .div_mid = OURS, .div_cid = CID, REFUSED},
    {"divergent_not_probed_needs_health", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .no_probe = true, .div_mid = OURS, .div_cid = CID, REFUSED, .flags = X_NEEDS_HEALTH},
    {"divergent_torn_tail_no_quorum_refuse", VALID, .torn = true, REACH,
     MEMBERS(DOWN(B), DOWN(C), US_UP), .div_mid = OURS, .div_cid = CID, REFUSED},
    {"divergent_other_learner_pending_refuse", VALID, REACH,
     MEMBERS(UP(B), UP(C), US_UP, M(E, true, false, true, true)), .div_mid = OURS, .div_cid = CID,
     REFUSED},
    {"divergent_other_cluster_refuse", VALID, .reachable = true, .cid = OTHERCID,
     MEMBERS(UP(B), UP(C), US_UP), .div_mid = OURS, .div_cid = CID, REFUSED},
    {"divergent_locked_refuse", VALID, .locked = true, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .div_mid = OURS, .div_cid = CID, REFUSED},
    {"divergent_marker_of_other_member_ignored_keep", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .div_mid = B, .div_cid = CID, .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"divergent_marker_of_other_cluster_ignored_keep", VALID, REACH, MEMBERS(UP(B), UP(C), US_UP),
     .div_mid = OURS, .div_cid = OTHERCID, .action = DECIDE_KEEP, EXISTING, .member_id = OURS},
    {"divergent_marker_with_empty_data_readd", EMPTY, REACH, MEMBERS(UP(B), UP(C)), .div_mid = OURS,
     .div_cid = CID, .action = DECIDE_READD, EXISTING, .flags = X_ADD | X_LEARNER},
    /* without a request, the restored cluster's other ID is a wrong volume, as before */
    {"restore_not_requested_other_cluster_refuse", OLD, REACH, MEMBERS(UP(B)), REFUSED},
};

static void facts_of(const struct row *r, struct decide_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->data = r->data;
    f->ids_known = r->ids_known;
    f->data_member_id = r->ids_known ? OURS : 0;
    f->data_cluster_id = r->ids_known ? r->data_cid : 0;
    f->torn_tail = r->torn;
    f->data_locked = r->locked;
    f->reachable = r->reachable;
    f->answered_error = r->answered_error;
    f->cluster_id = r->cid;
    f->members = r->members;
    f->n_members = r->n;
    f->health_probed = !r->no_probe;
    f->learner = !r->no_learner;
    f->restore_requested = r->restore_req;
    f->restore_restorer = r->restorer;
    f->restore_done = r->restore_done;
    f->restore_cluster_id = r->marker_cid;
    f->divergent_marker = r->div_mid != 0;
    f->divergent_member_id = r->div_mid;
    f->divergent_cluster_id = r->div_cid;
}

static void run_row(void **state)
{
    const struct row *r = *state;
    struct decide_facts f;
    struct decide_decision d;

    facts_of(r, &f);
    decide(&f, &d);
    print_message("  %s -> %s %s: %s\n", r->name, decide_action_name(d.action),
                  decide_state_name(d.state), d.reason);
    assert_string_equal(decide_action_name(d.action), decide_action_name(r->action));
    assert_int_equal(d.state, r->state);
    assert_int_equal(d.remove, !!(r->flags & X_REMOVE));
    assert_int_equal(d.add_self, !!(r->flags & X_ADD));
    assert_int_equal(d.add_learner, !!(r->flags & X_LEARNER));
    assert_int_equal(d.move_aside, !!(r->flags & X_MOVE));
    assert_int_equal(d.needs_health, !!(r->flags & X_NEEDS_HEALTH));
    assert_int_equal(d.remove_id, r->remove_id);
    assert_int_equal(d.member_id, r->member_id);
    assert_true(d.reason[0] != '\0');
    /* a marker that applies is always in the reason; one that does not says why */
    if (decide_divergent_applies(&f)) {
        if (d.action != DECIDE_REFUSE)
            assert_non_null(strstr(d.reason, "divergent"));
    } else if (f.divergent_marker) {
        assert_non_null(decide_divergent_ignored(&f));
    }
    /* invariants over every row */
    if (d.action == DECIDE_REFUSE)
        assert_true(!d.remove && !d.add_self && !d.move_aside && d.state == DECIDE_STATE_NONE);
    if (d.move_aside || d.remove) {
        struct decide_summary s;
        decide_summarize(&f, &s);
        assert_true(f.health_probed && s.quorum); /* never without confirmed quorum */
    }
}

/* The same facts always give the same decision (pure function). */
static void test_pure(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct decide_facts f;
        struct decide_decision a, b;
        facts_of(&rows[i], &f);
        decide(&f, &a);
        decide(&f, &b);
        assert_memory_equal(&a, &b, sizeof(a));
    }
}

static void test_summary(void **state)
{
    const struct decide_member m[] = {UP(B), DOWN(C), US_UP, M(E, true, false, true, true)};
    struct decide_facts f = {.data = DECIDE_DATA_VALID,
                             .ids_known = true,
                             .data_member_id = OURS,
                             .reachable = true,
                             .members = m,
                             .n_members = 4,
                             .health_probed = true};
    struct decide_summary s;

    (void)state;
    decide_summarize(&f, &s);
    assert_int_equal(s.voters, 3);
    assert_int_equal(s.healthy_voters_other, 1);
    assert_int_equal(s.learners_other, 1);
    assert_false(s.quorum);
    assert_int_equal(s.self_by_id, 1);
    assert_int_equal(s.self_by_url, 1);
    assert_ptr_equal(s.by_id, &m[2]);
    assert_ptr_equal(s.by_url, &m[2]);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(decide_action_name(DECIDE_READD), "readd");
    assert_string_equal(decide_state_name(DECIDE_STATE_NEW), "new");
    assert_string_equal(decide_state_name(DECIDE_STATE_NONE), "");
    assert_string_equal(decide_data_name(DECIDE_DATA_CORRUPT), "corrupt");
}

int main(void)
{
    enum { N = ARRAY_SIZE(rows) };
    struct CMUnitTest tests[N + 3];

    for (size_t i = 0; i < N; i++) {
        tests[i] = (struct CMUnitTest){rows[i].name, run_row, NULL, NULL, &rows[i]};
    }
    tests[N] = (struct CMUnitTest)cmocka_unit_test(test_pure);
    tests[N + 1] = (struct CMUnitTest)cmocka_unit_test(test_summary);
    tests[N + 2] = (struct CMUnitTest)cmocka_unit_test(test_names);
    return _cmocka_run_group_tests("decide", tests, N + 3, NULL, NULL);
}
