/* probe.h - the probe loop: two threads that ask etcd and publish into the cache.
 *
 * The local thread asks the local member (--endpoints) every interval: Status, a serializable
 * Range and the alarm list. The cluster thread, every PROBE_CLUSTER_INTERVAL_MS, fetches
 * MemberList and each member's Status over its own cached channels, and drives learner
 * promotion (promote.c). HTTP handlers never wait on either: they read the cache (cache.h).
 * The etcd load is fixed by the intervals, whatever the request rate. */
#ifndef ER_AGENT_PROBE_H
#define ER_AGENT_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "cache.h"
#include "tls.h"

#define PROBE_READ_KEY "health" /* the serializable read, as HyperShift's checks do */

struct probe_config {
    const char *const *endpoints; /* the local member; 1..GRPC_MAX_ENDPOINTS */
    size_t n_endpoints;
    const char *const *cluster_endpoints; /* optional: instead of MemberList's client URLs */
    size_t n_cluster_endpoints;
    struct tls_ctx *tls;          /* client context; borrowed, outlives the probe */
    uint64_t interval_ms;         /* local probe period */
    uint64_t cluster_interval_ms; /* 0 -> PROBE_CLUSTER_INTERVAL_MS */
};

struct probe;

/* Local call timeout for an interval: clamp(interval, PROBE_MIN_TIMEOUT_MS, PROBE_MAX_...). */
int probe_call_timeout_ms(uint64_t interval_ms);

/* Starts both threads. Returns NULL with err filled (bad endpoints, no memory, no thread). */
struct probe *probe_start(const struct probe_config *cfg, struct cache *cache, char *err,
                          size_t err_len);

/* Wakes the threads, waits for them (at most one call timeout each) and frees everything. */
void probe_stop(struct probe *p);

#endif
