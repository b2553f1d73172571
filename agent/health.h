/* health.h - the readiness and liveness verdicts over a cached observation.
 *
 * Pure functions of a snapshot and the clock, shared by the HTTP routes (/readyz, /healthz,
 * /livez) and the metrics (etcd_agent_member_healthy). Rendering is routes.c's. */
#ifndef ER_AGENT_HEALTH_H
#define ER_AGENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "cache.h"

struct health_check {
    const char *name; /* static: "status", "serializable_read", ... */
    bool ok;
    char reason[CACHE_MAX_ERROR]; /* why it fails; "" when ok */
};

struct health_report {
    bool ok; /* every check passed */
    struct health_check checks[HEALTH_MAX_CHECKS];
    size_t n_checks;
    int64_t age_ms; /* age of the observation; -1 if there is none yet */
};

struct health_params {
    uint64_t interval_ms;     /* --probe-interval */
    uint64_t livez_intervals; /* --livez-intervals: livez fails after this many silent ones */
    uint64_t stale_ms;        /* readiness fails when the last probe round is older */
};

/* Readiness: the local member answers Status and a serializable read, has a leader, is not a
 * learner, and the cluster has no alarm; the observation is fresh. */
void health_ready(const struct cache_snapshot *s, int64_t now_ms, const struct health_params *p,
                  struct health_report *out);

/* Liveness: the agent runs and the local member answered within livez_intervals intervals
 * (counted from the agent's start until it first answered). Independent of quorum. */
void health_live(const struct cache_snapshot *s, int64_t now_ms, int64_t start_ms,
                 const struct health_params *p, struct health_report *out);

/* Age in ms of the newest good backup at now_wall_ms; -1 if none is known. */
int64_t health_backup_age_ms(const struct cache_backup *b, int64_t now_wall_ms);
/* One line when backups are late (no good one within 2 x interval), else "": said in /readyz's
 * body and /status, never a failure. */
void health_backup_note(const struct cache_backup *b, int64_t now_wall_ms, char *out, size_t len);

#endif
