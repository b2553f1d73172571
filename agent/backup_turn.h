/* backup_turn.h - the pure parts of off-node backups: whose turn it is to upload (rank of the
 * healthy voters, due time), and the object names. No clock, no I/O: backup.c gathers the
 * inputs (probe cache, store listing) and acts on the verdict. */
#ifndef ER_BACKUP_TURN_H
#define ER_BACKUP_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct backup_turn_member {
    uint64_t id;
    bool voter;   /* not a learner */
    bool healthy; /* answered, knows a leader, no errors */
    uint64_t raft_index;
};

struct backup_turn_input {
    const struct backup_turn_member *members; /* the cluster table */
    size_t n_members;
    uint64_t self;     /* the local member's ID */
    uint64_t leader;   /* the leader's ID as the local member sees it; 0: none */
    uint64_t max_lag;  /* raft entries the local member may trail the healthy voters by */
    int64_t now_ms;    /* wall clock, ms since the epoch */
    int64_t newest_ms; /* the newest complete backup in the store; < 0: none */
    int64_t start_ms;  /* when this agent started (stands for "newest" on an empty store) */
    uint64_t interval_ms;
    uint64_t grace_ms;
    int64_t due_since_ms; /* when this agent first saw the newest backup due (older than the
                           * interval); < 0: not yet. From backup_turn_due_since. */
};

enum backup_turn_verdict {
    BACKUP_TURN_GO = 0,
    BACKUP_TURN_NOT_DUE,   /* the newest backup is recent enough for our rank */
    BACKUP_TURN_NO_LEADER, /* the cluster has no leader */
    BACKUP_TURN_NO_QUORUM, /* healthy voters are not a majority */
    BACKUP_TURN_NOT_VOTER, /* a learner, or not in the table */
    BACKUP_TURN_UNHEALTHY, /* the local member is not healthy */
    BACKUP_TURN_LAGGING,   /* the local member trails the others by more than max_lag */
};
const char *backup_turn_verdict_str(enum backup_turn_verdict v);

/* The rank of `self` among the healthy voters: non-leaders first, then by member ID; -1 when
 * self is not a healthy voter. */
int backup_turn_rank(const struct backup_turn_input *in);

/* Whether this agent should upload now: its member is a healthy, caught-up voter of a cluster
 * with a leader and a quorum of healthy voters, the newest backup is older than
 * interval + rank * grace, and this agent saw it due rank * grace ago: after a long gap (the
 * store or the agents were down) every rank is past its due time at once, and the ranks still
 * take their turns a grace apart. *rank (may be NULL) gets the rank (-1 if none). */
enum backup_turn_verdict backup_turn_decide(const struct backup_turn_input *in, int *rank);

/* The due_since_ms to pass from now on: in->due_since_ms kept while the newest backup stays
 * older than the interval, now when it just became so, -1 while it is younger. */
int64_t backup_turn_due_since(const struct backup_turn_input *in);

/* "<16-hex cluster>/<yyyymmddThhmmssZ>-rev<N>.db[.zst][.age]". 0 or -ENAMETOOLONG. */
int backup_name_format(char *out, size_t len, uint64_t cluster_id, time_t t, int64_t revision,
                       bool zstd, bool age);
/* Parses a name made by backup_name_format (the part after the last '/' that follows the
 * cluster directory): 0 with *t (UTC) and *revision, or -EINVAL (manifests and others too). */
int backup_name_parse(const char *name, time_t *t, int64_t *revision);

#endif
