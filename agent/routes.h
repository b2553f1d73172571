/* routes.h - the agent's request handler: a route table dispatching by path and method.
 *
 * The built-in routes (/livez, /readyz, /healthz, /members, /status, /metrics) answer from the
 * probe cache only; they never call etcd. Other features (snapshots) add their own routes with
 * routes_add() before the server starts. Unknown paths get 404 JSON, wrong methods 405 with
 * Allow; every answer is counted in etcd_agent_http_requests_total{path,code}
 * (routes_on_done). */
#ifndef ER_AGENT_ROUTES_H
#define ER_AGENT_ROUTES_H

#include <stdbool.h>
#include <stdint.h>

#include "bounds.h"
#include "cache.h"
#include "health.h"
#include "http.h"
#include "metrics.h"

struct route {
    const char *path;    /* "/readyz"; with prefix, a prefix such as "/snapshots/" */
    bool prefix;         /* match every path starting with `path` */
    const char *methods; /* the Allow value, e.g. "GET, HEAD"; HEAD is served like GET */
    http_handler_fn fn;  /* called with `arg` once path and method matched */
    void *arg;
    /* The path label in etcd_agent_http_requests_total: `path` itself (bounded: one per
     * route, so prefix routes count under their prefix). */
};

struct routes_config {
    struct cache *cache; /* borrowed */
    struct health_params health;
    const char *version; /* agent version for etcd_agent_info */
    const char *name;    /* --name, shown in /status; may be "" */
};

struct routes;

/* Makes the table with the built-in routes. NULL on ENOMEM. Strings are borrowed. */
struct routes *routes_new(const struct routes_config *cfg);
void routes_free(struct routes *r);

/* Add a route (strings and arg borrowed; must outlive the server). Exact routes win over
 * prefix routes; among prefixes the longest wins. Returns 0, -EEXIST or -ENOSPC. */
int routes_add(struct routes *r, const struct route *route);

/* Add a metrics source (metrics.h) rendered after the built-in families on GET /metrics.
 * Returns 0 or -ENOSPC. */
int routes_add_metrics(struct routes *r, const struct metrics_source *src);

/* The http_handler_fn to give the server, with arg = the struct routes. */
void routes_handle(void *arg, const struct http_request *req, struct http_response *resp);

/* The server's on_done callback (server_done_fn), with arg = the struct routes: counts every
 * response sent, the server's own 400/408/431 too (req may be NULL: path "other"). */
void routes_on_done(void *arg, const struct http_request *req, int status, bool completed);

/* Helper for route handlers (also used by the built-ins): set a JSON body from a cJSON tree
 * (rendered unformatted, newline-terminated). Errors: http_response_error() (http.h). */
struct cJSON;
int routes_json(struct http_response *resp, int status, const struct cJSON *body);

#endif
