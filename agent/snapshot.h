/* snapshot.h - the agent's snapshot module as main.c sees it: made from the configuration,
 * it registers its routes (/snapshot: stream.h, /snapshots and /snapshots/<name>: saved.h)
 * and its metrics with routes.c, and stops its threads at exit.
 *
 * Depends on snapctx.h (the configuration and shared state), stream.h, saved.h, disksource.h,
 * routes.h and metrics.h. Only main.c (and the unit tests) use it. Every file call of a request
 * runs on a worker (snapjob.h), never on the event loop. */
#ifndef ER_SNAPSHOT_H
#define ER_SNAPSHOT_H

#include <stddef.h>

#include "snapctx.h"

struct snapshot;
struct routes;
struct metrics_writer;

/* Copies cfg (strings included), logs the I/O backend once, starts the worker pool, removes
 * stale .part files in the snapshot dir and starts the schedule. NULL with err filled. */
struct snapshot *snapshot_new(const struct snapshot_config *cfg, char *err, size_t err_len);
/* Stops the schedule and the workers; threads stuck in a file call are abandoned (bounded). */
void snapshot_free(struct snapshot *s);

/* Register /snapshot, /snapshots and /snapshots/ (each with its feature's handler) and the
 * metrics source. 0 or -ENOSPC/-EEXIST. */
int snapshot_add_routes(struct snapshot *s, struct routes *r);
/* metrics_source_fn (metrics.h) for the snapshot families, arg = the struct snapshot. */
void snapshot_metrics(void *arg, struct metrics_writer *w);
/* The shared state (for the unit tests: slots, counters). */
struct snapctx *snapshot_ctx(struct snapshot *s);

#endif
