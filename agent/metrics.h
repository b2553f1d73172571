/* metrics.h - the agent's metrics in the Prometheus text exposition format 0.0.4.
 *
 * Renders the cache's snapshot and counters; nothing here talks to etcd or to sockets
 * (routes.c serves the text on GET /metrics). Every family has HELP and TYPE lines. */
#ifndef ER_AGENT_METRICS_H
#define ER_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "cache.h"
#include "health.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Other features (snapshots, init) add their own families through a source: a callback that
 * writes with metrics_family() and metrics_sample() while /metrics is rendered (on the event
 * loop thread; it must not block). */
struct metrics_writer;
typedef void (*metrics_source_fn)(void *arg, struct metrics_writer *w);
struct metrics_source {
    metrics_source_fn fn;
    void *arg;
};

/* "# HELP" and "# TYPE" lines; type is "gauge", "counter" or "histogram". */
void metrics_family(struct metrics_writer *w, const char *name, const char *type, const char *help);
/* One sample. labels: NULL, or name/value pairs ending with NULL ({"code", "200", NULL});
 * values are escaped here. */
void metrics_sample(struct metrics_writer *w, const char *name, const char *const *labels,
                    double value);

/* Render into a malloc'd, NUL-terminated buffer (*out, *out_len without the NUL).
 * version: the agent's version for etcd_agent_info; sources (may be NULL) append families.
 * Returns 0, -ENOMEM or -E2BIG. */
int metrics_render(struct cache *c, const struct health_params *p, const char *version,
                   const struct metrics_source *sources, size_t n_sources, char **out,
                   size_t *out_len);

#endif
