/* snapshot.c - the snapshot module's assembly: makes the shared context and the features
 * (disk source, stream, saved snapshots), registers one route per path with its feature's
 * handler, renders the metrics, and tears it all down in order. What each route does is its
 * feature's file. */
#include "snapshot.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disksource.h"
#include "metrics.h"
#include "routes.h"
#include "saved.h"
#include "stream.h"

struct snapshot {
    struct snapctx *ctx;
    struct disksource *disk;
    struct stream_feature *stream;
    struct saved *saved;
    struct route routes[3];
    struct metrics_source metrics;
};

struct snapshot *snapshot_new(const struct snapshot_config *cfg, char *err, size_t err_len)
{
    struct snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (!(s->ctx = snapctx_new(cfg, err, err_len)))
        goto fail;
    if (!(s->disk = disksource_new(s->ctx)) || !(s->stream = stream_new(s->ctx, s->disk))) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (!(s->saved = saved_new(s->ctx, s->disk, err, err_len)))
        goto fail;
    return s;
fail:
    /* Nothing has run yet: the pool's idle workers always stop, so everything is freed. */
    saved_free(s->saved);
    (void)snapctx_free(s->ctx);
    stream_free(s->stream);
    disksource_free(s->disk);
    free(s);
    return NULL;
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    saved_stop(s->saved); /* the schedule first: it uses the pool's slots */
    if (!snapctx_free(s->ctx))
        return; /* threads stuck in file calls still use the features: the process exits */
    saved_free(s->saved);
    stream_free(s->stream);
    disksource_free(s->disk);
    free(s);
}

struct snapctx *snapshot_ctx(struct snapshot *s)
{
    return s->ctx;
}

static void counter(struct metrics_writer *w, const char *name, const char *help, double v)
{
    metrics_family(w, name, "counter", help);
    metrics_sample(w, name, NULL, v);
}

static void gauge(struct metrics_writer *w, const char *name, const char *help, double v)
{
    metrics_family(w, name, "gauge", help);
    metrics_sample(w, name, NULL, v);
}

static void by_result(struct metrics_writer *w, const char *name, const char *help,
                      const char *const *results, const atomic_uint_fast64_t *const *v, size_t n)
{
    metrics_family(w, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        const char *labels[] = {"result", results[i], NULL};
        metrics_sample(w, name, labels, (double)atomic_load(v[i]));
    }
}

void snapshot_metrics(void *arg, struct metrics_writer *w)
{
    struct snapshot *s = arg;
    struct snapshot_counters *m = &s->ctx->m;
    static const char *const stream_res[] = {"ok", "failed", "aborted"};
    const atomic_uint_fast64_t *const sv[] = {&m->stream[0], &m->stream[1], &m->stream[2]};
    by_result(w, "etcd_agent_snapshots_total", "Snapshots streamed by GET /snapshot, by outcome.",
              stream_res, sv, 3);
    counter(w, "etcd_agent_snapshot_sent_bytes_total", "Snapshot bytes sent to clients.",
            (double)atomic_load(&m->stream_bytes));
    static const char *const two[] = {"ok", "failed"};
    const atomic_uint_fast64_t *const saved[] = {&m->saved_ok, &m->saved_failed};
    by_result(w, "etcd_agent_snapshot_saved_total",
              "Snapshots saved to --snapshot-dir, by outcome.", two, saved, 2);
    counter(w, "etcd_agent_snapshot_saved_bytes_total", "Bytes written to saved snapshots.",
            (double)atomic_load(&m->saved_bytes));
    const atomic_uint_fast64_t *const files[] = {&m->file_ok, &m->file_failed};
    by_result(w, "etcd_agent_snapshot_file_downloads_total",
              "Saved-snapshot and disk-source downloads, by outcome.", two, files, 2);
    counter(w, "etcd_agent_snapshot_rejected_total",
            "Snapshot requests refused with 429 (concurrency limit).",
            (double)atomic_load(&m->rejected));
    counter(w, "etcd_agent_snapshot_spill_bytes_total",
            "Bytes spooled to disk because a client was slower than etcd.",
            (double)atomic_load(&m->spill_bytes));
    gauge(w, "etcd_agent_snapshot_last_upstream_seconds",
          "Duration of the last etcd snapshot stream (etcd's read transaction).",
          (double)atomic_load(&m->last_upstream_ms) / 1000.0);
    gauge(w, "etcd_agent_snapshot_last_saved_seconds", "Duration of the last saved snapshot.",
          (double)atomic_load(&m->last_saved_ms) / 1000.0);
    gauge(w, "etcd_agent_snapshot_last_size_bytes", "Database size of the last complete snapshot.",
          (double)atomic_load(&m->last_size));
    gauge(w, "etcd_agent_snapshot_in_flight", "Upstream snapshots running.",
          (double)atomic_load(&s->ctx->slots));
    const char *n = "etcd_agent_io_backend";
    metrics_family(w, n, "gauge", "File I/O backend in use (1 for the active one).");
    bool ur = strcmp(s->ctx->backend, "io_uring") == 0;
    const char *l1[] = {"backend", "io_uring", NULL}, *l2[] = {"backend", "syscalls", NULL};
    metrics_sample(w, n, l1, ur ? 1 : 0);
    metrics_sample(w, n, l2, ur ? 0 : 1);
}

int snapshot_add_routes(struct snapshot *s, struct routes *r)
{
    /* Methods are the router's: it answers 405 with Allow for any other. */
    s->routes[0] = (struct route){
        .path = "/snapshot", .methods = "GET, HEAD", .fn = stream_route, .arg = s->stream};
    s->routes[1] = (struct route){.path = "/snapshots",
                                  .methods = "GET, HEAD, POST",
                                  .fn = saved_route_list,
                                  .arg = s->saved};
    s->routes[2] = (struct route){.path = "/snapshots/",
                                  .prefix = true,
                                  .methods = "GET, HEAD",
                                  .fn = saved_route_file,
                                  .arg = s->saved};
    for (size_t i = 0; i < sizeof s->routes / sizeof s->routes[0]; i++) {
        int rc = routes_add(r, &s->routes[i]);
        if (rc < 0)
            return rc;
    }
    s->metrics = (struct metrics_source){.fn = snapshot_metrics, .arg = s};
    return routes_add_metrics(r, &s->metrics);
}
