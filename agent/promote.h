/* promote.h - learner promotion: when the local member is a learner, call MemberPromote on a
 * voter until it succeeds, backing off while etcd answers "not in sync with leader".
 *
 * Runs on the probe's cluster thread (probe.c calls promote_step every tick) and reads what the
 * probes cached; it owns one channel to the voters (the leader's client URLs first, or
 * --cluster-endpoints). Every try is logged and counted (etcd_agent_promote_attempts_total). */
#ifndef ER_AGENT_PROMOTE_H
#define ER_AGENT_PROMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "cache.h"
#include "tls.h"

struct promote;

/* cluster_endpoints optional (borrowed); tls borrowed. NULL on ENOMEM. */
struct promote *promote_new(struct tls_ctx *tls, const char *const *cluster_endpoints,
                            size_t n_cluster_endpoints);
void promote_free(struct promote *p);

/* Try once if the local member is a learner and the backoff allows; publishes the promotion
 * state into the cache. Blocks for at most PROMOTE_TIMEOUT_MS plus a connect. */
void promote_step(struct promote *p, struct cache *cache);

/* Exposed for tests: the next backoff after `cur` (doubling, capped). */
uint64_t promote_next_backoff(uint64_t cur_ms);

/* The endpoints to send MemberPromote to, from the --cluster-endpoints list `given`: those that
 * are not among the local member's `self_urls` (all of them if none is left), rotated left by
 * `rotate`, into `out` (GRPC_MAX_ENDPOINTS entries). Returns how many. Pure; exposed for tests. */
size_t promote_order_endpoints(const char *const *given, size_t n_given,
                               const char *const *self_urls, size_t n_self, size_t rotate,
                               const char **out);

#endif
