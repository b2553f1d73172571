/* decide.h - reset-member's decision: observed facts in, one action out.
 *
 * A pure function (no I/O, no clock, no allocation) so that every row of the decision table
 * and every edge is a table test (tests/unit/test_decide.c). Gathering the facts is
 * observe.c's; carrying the decision out is act.c's. */
#ifndef ER_DECIDE_H
#define ER_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DECIDE_REASON_MAX 256

enum decide_data {
    DECIDE_DATA_EMPTY,      /* absent or empty: nothing to lose */
    DECIDE_DATA_VALID,      /* intact; ids known */
    DECIDE_DATA_CORRUPT,    /* broken; ids maybe known */
    DECIDE_DATA_UNREADABLE, /* could not be inspected at all (e.g. EACCES): not evidence of
                             * corruption, so never a reason to move it */
};

/* One entry of the cluster's member list, reduced to what the decision needs. */
struct decide_member {
    uint64_t id;
    bool started;       /* has client URLs: it ran and published itself. A name alone does not
                         * count: members of the --initial-cluster carry their name before
                         * they ever start (measured on etcd 3.4.23). */
    bool peer_url_ours; /* one of its peer URLs equals our --peer-url */
    bool healthy;       /* answered Status with a leader and a serializable range */
    bool learner;
};

struct decide_facts {
    /* data dir */
    enum decide_data data;
    bool ids_known; /* member/cluster ID read from the WAL (always for VALID) */
    uint64_t data_member_id;
    uint64_t data_cluster_id;
    bool torn_tail;   /* VALID but the last WAL record is cut short (crash during a write) */
    bool data_locked; /* some process (etcd) holds the WAL locks: it is running on this dir */

    /* cluster */
    bool reachable;      /* some endpoint answered MemberList */
    bool answered_error; /* not reachable, but some server answered MemberList with an error
                          * (e.g. a learner): a cluster exists, so never bootstrap beside it.
                          * (etcd 3.4 does not serve clients at all before its first quorum.) */
    uint64_t cluster_id;
    const struct decide_member *members; /* the list as answered (reachable only) */
    size_t n_members;
    bool health_probed; /* members[].healthy were measured; if false, a decision that needs
                         * them comes back with needs_health set */

    /* restore (issue 6): --restore-from was given. The restorer (--restore-member) restores
     * the snapshot as a one-member cluster; every other member (a peer) rejoins that cluster
     * with MemberAdd. restore_done: a marker for this very request exists (same source; for
     * the restorer, the same snapshot digest); it counts only if restore_cluster_id (from the
     * marker) is our data's cluster or the reachable one. */
    bool restore_requested;
    bool restore_restorer;
    bool restore_done;
    uint64_t restore_cluster_id;

    /* divergent marker (common/divergent.h, written by the agent): the leader's HashKV check
     * named member divergent_member_id of cluster divergent_cluster_id divergent by a
     * majority. It counts only for our data's member and cluster IDs; then the data is
     * treated like corrupt data (reset only while the others have quorum). */
    bool divergent_marker;
    uint64_t divergent_member_id;
    uint64_t divergent_cluster_id;

    /* options */
    bool learner; /* add ourselves as a learner (default) rather than a voter */
};

enum decide_action {
    DECIDE_BOOTSTRAP, /* fresh cluster: start with state new, no membership change */
    DECIDE_JOIN,      /* our unstarted entry exists: start existing with empty data */
    DECIDE_READD,     /* empty data: remove our old entry (if any), add ourselves */
    DECIDE_KEEP,      /* start on the data as it is */
    DECIDE_RESET,     /* remove own entry (if any), add ourselves (or reuse an unstarted entry
                       * with our peer URL), move the data aside */
    DECIDE_REFUSE,    /* etcd must not start; nothing is touched */
    DECIDE_RESTORE,   /* restorer: restore the snapshot as a one-member cluster (restore.c),
                       * moving the data aside; state new */
};

enum decide_state { DECIDE_STATE_NONE, DECIDE_STATE_NEW, DECIDE_STATE_EXISTING };

struct decide_decision {
    enum decide_action action;
    enum decide_state state;
    bool remove; /* remove member remove_id before anything else */
    uint64_t remove_id;
    bool add_self;      /* MemberAdd with our peer URL */
    bool add_learner;   /* ... as a learner */
    bool move_aside;    /* rename the data dir aside (after the membership changes) */
    uint64_t member_id; /* the ID we will run as, when known now (keep, join, reset onto an
                         * unstarted entry); 0 otherwise (act fills it after MemberAdd) */
    bool needs_health;  /* facts.health_probed was false and this decision needs it: probe
                         * the members' health and decide again */
    char reason[DECIDE_REASON_MAX];
};

/* Quantities derived from the member list; decide() uses them, the log line shows them. */
struct decide_summary {
    size_t voters;                      /* non-learner members in the list */
    size_t healthy_voters_other;        /* healthy voters that are not us (by ID or peer URL) */
    size_t learners_other;              /* learners that are not us */
    bool quorum;                        /* healthy_voters_other > voters / 2 */
    size_t self_by_id;                  /* entries with our data's member ID (0 or 1) */
    size_t self_by_url;                 /* entries with our peer URL */
    const struct decide_member *by_id;  /* the entry with our data's member ID */
    const struct decide_member *by_url; /* the (first) entry with our peer URL */
};

void decide_summarize(const struct decide_facts *f, struct decide_summary *s);

/* The decision for these facts. Rows the table does not cover are DECIDE_REFUSE with a
 * reason. Always fills *d. */
void decide(const struct decide_facts *f, struct decide_decision *d);

/* Whether a divergent marker applies to these facts: NULL when it does (or there is none),
 * otherwise why it is ignored (a static string). */
const char *decide_divergent_ignored(const struct decide_facts *f);
bool decide_divergent_applies(const struct decide_facts *f);

/* "bootstrap", "join", ... ; "new", "existing", "" */
const char *decide_action_name(enum decide_action a);
const char *decide_state_name(enum decide_state s);
const char *decide_data_name(enum decide_data v);

#endif
