/* cache.h - what the probe loop observed, published for the HTTP handlers.
 *
 * The probe threads (probe.c, promote.c) publish immutable snapshots; handlers take a reference
 * to the current one (a mutex held for a pointer copy and a counter increment) and never wait
 * on etcd. Counters that handlers and probes bump (errors, histograms, HTTP requests, promote
 * tries) live here too. Talking to etcd is probe.c's; rendering is routes.c's and metrics.c's. */
#ifndef ER_AGENT_CACHE_H
#define ER_AGENT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

/* Probe duration histogram upper bounds in seconds (le labels), +Inf implied. */
#define CACHE_PROBE_BUCKETS 12
extern const double cache_probe_bucket_bounds[CACHE_PROBE_BUCKETS];

/* Calls the probes make; index into the error counters. */
enum cache_call {
    CACHE_CALL_STATUS = 0,
    CACHE_CALL_RANGE,
    CACHE_CALL_ALARM,
    CACHE_CALL_MEMBER_LIST,
    CACHE_CALL_MEMBER_STATUS,
    CACHE_CALL_PROMOTE,
    CACHE_CALL_COUNT
};
const char *cache_call_name(enum cache_call c); /* "status", "range", ... */

enum cache_probe { CACHE_PROBE_LOCAL = 0, CACHE_PROBE_CLUSTER, CACHE_PROBE_COUNT };
const char *cache_probe_name(enum cache_probe p); /* "local", "cluster" */

/* One Status answer. */
struct cache_status {
    uint64_t cluster_id, member_id; /* from the response header */
    int64_t revision;
    char version[32];
    int64_t db_size, db_size_in_use;
    int64_t db_size_quota; /* 3.6 only; 0 otherwise */
    uint64_t leader;       /* 0: no leader */
    uint64_t raft_index, raft_term, raft_applied_index;
    bool is_learner;
    char errors[CACHE_MAX_STATUS_ERRORS][CACHE_MAX_ERROR];
    size_t n_errors;
};

struct cache_alarm {
    uint64_t member_id;
    int type; /* enum etcd_alarm_type */
};

/* The local member, probed every --probe-interval. Times are CLOCK_MONOTONIC milliseconds. */
struct cache_local {
    int64_t probed_at_ms;   /* when the last probe round finished; 0: none yet */
    int64_t answered_at_ms; /* last round in which the member answered Status or a read */
    uint32_t took_ms;       /* duration of the last round */
    bool status_ok;         /* the last round's Status succeeded */
    char status_error[CACHE_MAX_ERROR]; /* its error otherwise */
    bool have_status;                   /* status holds the last good answer (maybe older) */
    int64_t status_at_ms;               /* when status was received */
    struct cache_status status;
    bool range_ok;
    char range_error[CACHE_MAX_ERROR];
    bool alarms_ok;
    struct cache_alarm alarms[CACHE_MAX_ALARMS];
    size_t n_alarms;
    char alarm_error[CACHE_MAX_ERROR];
};

struct cache_member {
    uint64_t id;
    char name[CACHE_MAX_NAME]; /* "" if never started */
    char peer_urls[CACHE_MAX_URLS][CACHE_MAX_URL];
    size_t n_peer_urls;
    char client_urls[CACHE_MAX_URLS][CACHE_MAX_URL];
    size_t n_client_urls;
    bool is_learner;
    bool started;  /* has a name and client URLs */
    bool answered; /* Status answered within the timeout */
    bool healthy;  /* answered, knows a leader, reports no errors */
    uint32_t took_ms;
    char error[CACHE_MAX_ERROR]; /* why not healthy; "" if healthy */
    struct cache_status status;  /* valid when answered */
};

/* The cluster table, probed every few seconds. */
struct cache_cluster {
    int64_t probed_at_ms; /* 0: none yet */
    uint32_t took_ms;
    bool ok; /* MemberList answered */
    char error[CACHE_MAX_ERROR];
    struct cache_member members[CACHE_MAX_MEMBERS];
    size_t n_members;
    bool truncated; /* more members than CACHE_MAX_MEMBERS */
};

/* Learner promotion state (promote.c). */
struct cache_promote {
    bool active;       /* the local member is a learner and we are trying */
    bool promoted;     /* a MemberPromote of ours succeeded */
    uint64_t attempts; /* tries so far */
    int64_t last_try_ms;
    int64_t next_try_ms;
    char last_error[CACHE_MAX_ERROR];
};

/* Day-2 maintenance (maint.c): what the probes and the routes must know. */
struct cache_maint_member {
    uint64_t id;
    int64_t quota; /* backend quota bytes; 0 unknown */
    bool hash_ok;  /* answered the last HashKV check */
    uint32_t hash;
    bool divergent; /* named by the last check */
};
struct cache_maint {
    bool enabled;     /* the module runs */
    bool coordinator; /* the local member is the leader: this agent coordinates */
    /* The local member is being defragmented (by the coordinator): probes say so and /livez
     * allows up to defrag_timeout_ms from defrag_since_ms. */
    bool defragmenting;
    int64_t defrag_since_ms;
    uint64_t defrag_timeout_ms;
    int64_t quota;                        /* the local member's backend quota; 0 unknown */
    char last_step[CACHE_MAX_ERROR];      /* the coordinator's last decision, for /status */
    char nospace_reason[CACHE_MAX_ERROR]; /* why a NOSPACE alarm is left in place; "" none */
    char hashkv_verdict[32]; /* "consistent", "divergent member", ...; "" never checked */
    int64_t hashkv_revision;
    int64_t hashkv_at_ms;
    struct cache_maint_member members[CACHE_MAX_MEMBERS];
    size_t n_members;
};

/* Off-node backups (backup.c): what /readyz, /status and the /members table say of them. Wall
 * clock times (backup names carry wall time). */
struct cache_backup {
    bool enabled;                /* --backup-url is set */
    uint64_t interval_ms;        /* --backup-interval; 0: on demand only */
    int64_t started_wall_ms;     /* when the module started */
    int64_t last_good_wall_ms;   /* newest good backup this agent made or saw; 0: none known */
    char store[CACHE_MAX_ERROR]; /* the store's URL without query or credentials */
};

struct cache_snapshot {
    struct cache_local local;
    struct cache_cluster cluster;
    struct cache_promote promote;
    struct cache_maint maint;
    struct cache_backup backup;
    /* private */
    unsigned refs;
};

/* Verdict over a cluster table, like HyperShift's recovery Job computes. */
struct cache_verdict {
    bool quorum; /* healthy voters > voters / 2 */
    size_t n_voters, n_healthy_voters;
    size_t failing[CACHE_MAX_MEMBERS]; /* indexes into cluster.members */
    size_t n_failing;
    bool recoverable; /* exactly one member failing, every other healthy */
};
void cache_verdict(const struct cache_cluster *cl, struct cache_verdict *v);

struct cache;

/* start_ms: the agent's start (monotonic ms), used by /livez's startup grace. NULL on ENOMEM. */
struct cache *cache_new(int64_t start_ms);
void cache_free(struct cache *c);
int64_t cache_start_ms(const struct cache *c);

/* Current snapshot, never NULL (an empty one before the first probe). Release it when done. */
const struct cache_snapshot *cache_acquire(struct cache *c);
void cache_release(struct cache *c, const struct cache_snapshot *s);

/* Replace one part of the current snapshot (copy-on-write). Returns 0 or -ENOMEM (then the
 * previous snapshot stays). */
int cache_publish_local(struct cache *c, const struct cache_local *local);
int cache_publish_cluster(struct cache *c, const struct cache_cluster *cluster);
int cache_publish_promote(struct cache *c, const struct cache_promote *promote);
int cache_publish_maint(struct cache *c, const struct cache_maint *maint);
int cache_publish_backup(struct cache *c, const struct cache_backup *backup);

/* Counters, thread-safe. */
void cache_count_probe(struct cache *c, enum cache_probe p, double seconds);
void cache_count_error(struct cache *c, enum cache_call call);
void cache_count_promote(struct cache *c);
/* path must be a static string from a bounded set (the route table's labels, or "other"). */
void cache_count_http(struct cache *c, const char *path, int code);

struct cache_histogram {
    uint64_t buckets[CACHE_PROBE_BUCKETS]; /* non-cumulative counts per bucket */
    uint64_t inf;                          /* above the last bound */
    uint64_t count;
    double sum;
};
struct cache_http_series {
    const char *path;
    int code;
    uint64_t count;
};
struct cache_counters {
    struct cache_histogram probe[CACHE_PROBE_COUNT];
    uint64_t errors[CACHE_CALL_COUNT];
    uint64_t promote_attempts;
    struct cache_http_series http[CACHE_MAX_HTTP_SERIES];
    size_t n_http;
    uint64_t http_dropped; /* requests whose series did not fit */
};
/* A consistent copy of all counters. */
void cache_counters(struct cache *c, struct cache_counters *out);

#endif
