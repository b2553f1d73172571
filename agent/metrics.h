/* metrics.h - the agent's metrics in the Prometheus text exposition format 0.0.4.
 *
 * Renders the cache's snapshot and counters; nothing here talks to etcd or to sockets
 * (routes.c serves the text on GET /metrics). Every family has HELP and TYPE lines. */
#ifndef ER_AGENT_METRICS_H
#define ER_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "health.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_BYTES (256u * 1024) /* rendered text; more is an error (-E2BIG) */

/* Render into a malloc'd, NUL-terminated buffer (*out, *out_len without the NUL).
 * version: the agent's version for etcd_agent_info. Returns 0, -ENOMEM or -E2BIG. */
int metrics_render(struct cache *c, const struct health_params *p, const char *version, char **out,
                   size_t *out_len);

#endif
