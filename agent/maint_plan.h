/* maint_plan.h - day-2 maintenance decisions: observed facts in, one step out.
 *
 * Pure functions (no I/O, no clock, no allocation), table-tested in tests/unit/test_maint_plan.c:
 * which member is due for defragmentation, who may act, the order (followers one at a time,
 * the leader last after handing leadership over), NOSPACE recovery, the HashKV revision and
 * the comparison of hashes. Gathering the facts and carrying steps out is maint.c's. */
#ifndef ER_AGENT_MAINT_PLAN_H
#define ER_AGENT_MAINT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

struct maint_plan_params {
    int64_t min_free;            /* --defrag-min-free, bytes */
    unsigned threshold_pct;      /* --defrag-threshold */
    unsigned nospace_resume_pct; /* --nospace-resume */
    bool nospace_compact;        /* --nospace-compact */
};

/* One member as the coordinator saw it this round. */
struct maint_plan_member {
    uint64_t id;
    bool learner;
    bool answered;   /* Status answered */
    bool read_ok;    /* a serializable read answered */
    uint64_t leader; /* its view of the leader; 0 none */
    int64_t db_size, db_in_use;
    int64_t quota; /* backend quota; 0 unknown */
    uint64_t raft_index, applied_index;
    int64_t revision; /* header revision of its Status */
};

struct maint_plan_facts {
    uint64_t self;     /* the member this agent runs beside */
    bool nospace;      /* a NOSPACE alarm is raised */
    int64_t compacted; /* the revision this coordinator last compacted to (0: none) */
    const struct maint_plan_member *members;
    /* Under NOSPACE: members[i] was defragmented by this coordinator in this episode (may be
     * NULL). Pages freed by a compaction are counted free only after the member's next write,
     * which NOSPACE refuses: so a follower still above the resume mark is defragmented once
     * even when it shows little free space. The leader moves only for space it shows free. */
    const bool *done;
    size_t n;
};

enum maint_step {
    MAINT_IDLE,        /* nothing to do; reason says why (or "nothing due") */
    MAINT_SKIP,        /* something is due but may not be done now; reason (a skip label) */
    MAINT_DEFRAG,      /* Defragment members[target] */
    MAINT_MOVE_LEADER, /* MoveLeader to members[target] (we are the leader and due) */
    MAINT_COMPACT,     /* under NOSPACE: compact to revision */
    MAINT_DISARM,      /* under NOSPACE: Alarm DEACTIVATE NOSPACE */
    MAINT_HOLD,        /* under NOSPACE: space cannot be freed; leave the alarm, reason */
};

struct maint_plan_decision {
    enum maint_step step;
    size_t target;     /* index into members for DEFRAG and MOVE_LEADER */
    int64_t revision;  /* for COMPACT */
    const char *label; /* static skip label for etcd_agent_defrag_skipped_total{reason} */
    char reason[MAINT_PLAN_REASON_MAX];
};

/* True if m is due for a defrag under p: free = db - in_use >= min_free and >= threshold % of
 * db. Under NOSPACE: free >= MAINT_PLAN_NOSPACE_MIN_FREE. */
bool maint_plan_due(const struct maint_plan_member *m, const struct maint_plan_params *p,
                    bool nospace);

/* The next step of the coordinator. Only the leader's agent acts (others: IDLE "not the
 * leader"); learners and members of a cluster without quorum are never defragmented; a step
 * is taken only when every voter answered Status and a serializable read. */
void maint_plan_next(const struct maint_plan_facts *f, const struct maint_plan_params *p,
                     struct maint_plan_decision *out);

/* HashKV: the revision to compare at: the lowest current revision among answering members
 * (at or below every member's current revision); 0 if none answered. */
int64_t maint_plan_hashkv_revision(const struct maint_plan_member *m, size_t n);

struct maint_plan_hash {
    uint64_t id;
    bool ok; /* answered */
    uint32_t hash;
    int64_t compact_revision;
};
enum maint_hash_verdict {
    MAINT_HASH_UNKNOWN,      /* too few comparable answers */
    MAINT_HASH_CONSISTENT,   /* every compared answer equal */
    MAINT_HASH_DIVERGENT,    /* a majority agrees; the others are named in divergent[] */
    MAINT_HASH_INCONSISTENT, /* answers differ and no hash has a majority: nobody named */
};
/* Compares answers with the most common compact_revision only. n_members is the cluster size
 * (a majority is > n_members / 2). divergent[i] is set for named members. */
enum maint_hash_verdict maint_plan_hash_compare(const struct maint_plan_hash *h, size_t n,
                                                size_t n_members, bool *divergent);
const char *maint_plan_hash_verdict_name(enum maint_hash_verdict v);

/* What a check means for the local member's divergent marker (common/divergent.h). */
enum maint_marker_action {
    MAINT_MARKER_LEAVE,  /* no evidence either way (no majority, no answer, not listed) */
    MAINT_MARKER_WRITE,  /* a majority named it: *majority_hash is the majority's hash */
    MAINT_MARKER_REMOVE, /* it answered, was compared and agrees with the majority */
};
enum maint_marker_action maint_plan_marker(const struct maint_plan_hash *h, size_t n,
                                           enum maint_hash_verdict v, const bool *divergent,
                                           uint64_t self, uint32_t *majority_hash);

/* A size flag: plain bytes or a unit: "1048576", "100MB", "100MiB", "1GB", "512KiB", "0".
 * Returns 0 or -EINVAL. */
int maint_plan_parse_size(const char *s, int64_t *out);

#endif
