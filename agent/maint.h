/* maint.h - day-2 maintenance: defragmentation, NOSPACE recovery and HashKV consistency
 * checks, coordinated by the agent whose member is the raft leader.
 *
 * Depends on: the probe cache (cache.h: reads the local member and the cluster table, publishes
 * its state as the snapshot's maint part), the decisions of maint_plan.h, the typed calls of
 * common/etcd.h over its own gRPC channels, common/httpsget.h for etcd's /metrics (quota).
 * Everything that blocks (Defragment, HashKV, Status of other members) runs on the module's
 * own thread, never on the event loop; routes and probes answer from the cache meanwhile.
 * Rendering: its metrics through a metrics source (maint_metrics); /status and /members read
 * the cache. Docs: docs/maintenance.md. */
#ifndef ER_AGENT_MAINT_H
#define ER_AGENT_MAINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

#include "cache.h"
#include "maint_plan.h"
#include "metrics.h"
#include "tls.h"

struct maint_config {
    struct cache *cache;                  /* borrowed */
    struct tls_ctx *tls;                  /* etcd client context; borrowed */
    const char *const *cluster_endpoints; /* optional, borrowed: instead of MemberList's URLs */
    size_t n_cluster_endpoints;
    uint64_t defrag_interval_ms; /* 0: no defragmentation (NOSPACE recovery still runs) */
    uint64_t defrag_settle_ms;
    uint64_t defrag_timeout_ms;
    uint64_t hashkv_interval_ms;  /* 0: no HashKV checks */
    const char *divergent_marker; /* optional, borrowed: a HashKV check that names the local
                                   * member divergent by a majority records it in this file
                                   * (common/divergent.h) for reset-member */
    /* A follower's agent learns the leader's agent's verdict (GET /hashkv, maint_peer.h) at most
     * once per hashkv interval: from these agent base URLs ("http(s)://host:port"), or, when
     * none are given, from the leader member's client URL host with agent_scheme and
     * agent_port (our own listener's: every pod of the StatefulSet listens alike). */
    const char *const *peer_agents; /* optional, borrowed */
    size_t n_peer_agents;
    const char *agent_scheme; /* "https" or "http"; NULL: only peer_agents */
    const char *agent_port;
    struct maint_plan_params plan;
};

struct maint;

/* NULL on ENOMEM. Does not start the thread. */
struct maint *maint_new(const struct maint_config *cfg);
/* Starts the thread. Returns 0 or a negative errno. */
int maint_start(struct maint *m);
/* Stops the thread and frees everything. A blocking call in progress (a Defragment may take
 * minutes) is waited for up to MAINT_STOP_GRACE_MS; after that the thread is left to die with
 * the process, m is not freed, and false is returned: the caller must then keep the cache (the
 * thread still holds a snapshot of it). True otherwise (also for NULL). */
bool maint_free(struct maint *m);

/* A metrics_source_fn (arg = the struct maint): the etcd_agent_defrag_*, hashkv and quota
 * families. Never blocks (a mutex held for a copy). */
void maint_metrics(void *arg, struct metrics_writer *w);

/* Registers GET /hashkv: this agent's last HashKV verdict (maint_peer.h), read from the cache
 * (never blocks). r and m must outlive the server. 0 or a negative errno. */
struct routes;
int maint_add_routes(struct maint *m, struct routes *r);

#endif
