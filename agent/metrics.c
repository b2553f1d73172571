/* metrics.c - Prometheus text format 0.0.4 from the probe cache and the agent's counters.
 *
 * A small bounded text buffer, label-value escaping, and one function per family group.
 * What the values mean is decided by health.c (readiness) and probe.c (what gets cached). */
#include "metrics.h"
#include "clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *p;
    size_t len, cap;
    int err;
};

struct metrics_writer {
    struct buf b;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->err)
        return;
    if (b->len + more + 1 <= b->cap)
        return;
    if (b->len + more + 1 > METRICS_MAX_BYTES) {
        b->err = -E2BIG;
        return;
    }
    size_t cap = b->cap ? b->cap : METRICS_BUF_INITIAL;
    while (cap < b->len + more + 1)
        cap *= 2;
    if (cap > METRICS_MAX_BYTES)
        cap = METRICS_MAX_BYTES;
    char *n = realloc(b->p, cap);
    if (!n) {
        b->err = -ENOMEM;
        return;
    }
    b->p = n;
    b->cap = cap;
}

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        /* Every format here is short; a long one is a bug, not data to truncate. */
        if (!b->err)
            b->err = -E2BIG;
        return;
    }
    buf_reserve(b, (size_t)n);
    if (b->err)
        return;
    memcpy(b->p + b->len, tmp, (size_t)n + 1);
    b->len += (size_t)n;
}

/* A label value with \, " and newline escaped as the text format requires. */
static void put_label_value(struct buf *b, const char *v)
{
    for (; *v; v++) {
        const char *esc = NULL;
        if (*v == '\\')
            esc = "\\\\";
        else if (*v == '"')
            esc = "\\\"";
        else if (*v == '\n')
            esc = "\\n";
        size_t n = esc ? 2 : 1;
        buf_reserve(b, n);
        if (b->err)
            return;
        memcpy(b->p + b->len, esc ? esc : v, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct buf *b, const char *name, const char *help, bool known, double v)
{
    family(b, name, "gauge", help);
    if (known)
        put(b, "%s %.17g\n", name, v);
}

static void histogram(struct buf *b, const char *name, const char *label, const char *value,
                      const struct cache_histogram *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < CACHE_PROBE_BUCKETS; i++) {
        cum += h->buckets[i];
        put(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %" PRIu64 "\n", name, label, value,
            cache_probe_bucket_bounds[i], cum);
    }
    cum += h->inf;
    put(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name, label, value, cum);
    put(b, "%s_sum{%s=\"%s\"} %.9g\n", name, label, value, h->sum);
    put(b, "%s_count{%s=\"%s\"} %" PRIu64 "\n", name, label, value, h->count);
}

static void local_gauges(struct buf *b, const struct cache_snapshot *s, int64_t now,
                         const struct health_params *p)
{
    const struct cache_local *l = &s->local;
    struct health_report ready;
    health_ready(s, now, p, &ready);
    bool fresh = l->probed_at_ms != 0;
    bool st = fresh && l->status_ok;

    gauge(b, "etcd_agent_up", "1 if the local etcd member answered the last Status probe.", true,
          st ? 1 : 0);
    gauge(b, "etcd_agent_member_healthy",
          "1 if the local member passes every readiness check (as GET /readyz).", true,
          ready.ok ? 1 : 0);
    gauge(b, "etcd_agent_has_leader", "1 if the local member knows a raft leader.", true,
          st && l->status.leader != 0 ? 1 : 0);
    gauge(b, "etcd_agent_is_learner", "1 if the local member is a raft learner.", st,
          st && l->status.is_learner ? 1 : 0);
    gauge(b, "etcd_agent_db_size_bytes",
          "Size of the local member's backend database (last Status answer).", l->have_status,
          (double)l->status.db_size);
    gauge(b, "etcd_agent_db_size_in_use_bytes",
          "Bytes of the local member's backend database in use (last Status answer).",
          l->have_status, (double)l->status.db_size_in_use);
    gauge(b, "etcd_agent_raft_index", "Raft index of the local member (last Status answer).",
          l->have_status, (double)l->status.raft_index);
    gauge(b, "etcd_agent_last_probe_age_seconds",
          "Seconds since the last probe round of the local member finished.", fresh,
          (double)(now - l->probed_at_ms) / 1000.0);

    family(b, "etcd_agent_alarm", "gauge",
           "1 if an alarm of this type is raised anywhere in the cluster (last alarm list).");
    if (fresh && l->alarms_ok) {
        bool nospace = false, corrupt = false, unknown = false;
        for (size_t i = 0; i < l->n_alarms && i < CACHE_MAX_ALARMS; i++) {
            nospace |= l->alarms[i].type == 1;
            corrupt |= l->alarms[i].type == 2;
            unknown |= l->alarms[i].type < 0 || l->alarms[i].type > 2;
        }
        put(b, "etcd_agent_alarm{type=\"NOSPACE\"} %d\n", nospace);
        put(b, "etcd_agent_alarm{type=\"CORRUPT\"} %d\n", corrupt);
        if (unknown)
            put(b, "etcd_agent_alarm{type=\"UNKNOWN\"} 1\n");
    }
}

static void cluster_gauges(struct buf *b, const struct cache_snapshot *s)
{
    const struct cache_cluster *cl = &s->cluster;
    bool seen = cl->probed_at_ms != 0;
    size_t n[4] = {0}; /* healthy, unhealthy, learner, unstarted */
    for (size_t i = 0; i < cl->n_members && i < CACHE_MAX_MEMBERS; i++) {
        const struct cache_member *m = &cl->members[i];
        n[!m->started ? 3 : m->is_learner ? 2 : m->healthy ? 0 : 1]++;
    }
    family(b, "etcd_agent_cluster_members", "gauge",
           "Members of the cluster by state, from the last cluster probe.");
    if (seen) {
        static const char *const states[4] = {"healthy", "unhealthy", "learner", "unstarted"};
        for (size_t i = 0; i < 4; i++)
            put(b, "etcd_agent_cluster_members{state=\"%s\"} %zu\n", states[i], n[i]);
    }
    struct cache_verdict v;
    cache_verdict(cl, &v);
    gauge(b, "etcd_agent_cluster_quorum",
          "1 if more than half of the voting members are healthy (last cluster probe).", seen,
          v.quorum ? 1 : 0);
}

static void counters(struct buf *b, const struct cache_counters *k)
{
    family(b, "etcd_agent_probe_duration_seconds", "histogram",
           "Duration of one probe round (local: Status, read, alarms; cluster: members).");
    for (int p = 0; p < CACHE_PROBE_COUNT; p++)
        histogram(b, "etcd_agent_probe_duration_seconds", "probe",
                  cache_probe_name((enum cache_probe)p), &k->probe[p]);

    family(b, "etcd_agent_probe_errors_total", "counter", "Failed etcd calls of the probes.");
    for (int c = 0; c < CACHE_CALL_COUNT; c++)
        put(b, "etcd_agent_probe_errors_total{call=\"%s\"} %" PRIu64 "\n",
            cache_call_name((enum cache_call)c), k->errors[c]);

    family(b, "etcd_agent_http_requests_total", "counter",
           "HTTP requests answered by the agent's handlers, by route and status code.");
    for (size_t i = 0; i < k->n_http; i++) {
        put(b, "etcd_agent_http_requests_total{path=\"");
        put_label_value(b, k->http[i].path);
        put(b, "\",code=\"%d\"} %" PRIu64 "\n", k->http[i].code, k->http[i].count);
    }

    family(b, "etcd_agent_promote_attempts_total", "counter",
           "MemberPromote calls made for the local learner.");
    put(b, "etcd_agent_promote_attempts_total %" PRIu64 "\n", k->promote_attempts);
}

void metrics_family(struct metrics_writer *w, const char *name, const char *type, const char *help)
{
    family(&w->b, name, type, help);
}

void metrics_sample(struct metrics_writer *w, const char *name, const char *const *labels,
                    double value)
{
    struct buf *b = &w->b;
    put(b, "%s", name);
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        put(b, "%s%s=\"", i ? "," : "{", labels[i]);
        put_label_value(b, labels[i + 1]);
        put(b, "\"");
    }
    if (labels && labels[0])
        put(b, "}");
    put(b, " %.17g\n", value);
}

int metrics_render(struct cache *c, const struct health_params *p, const char *version,
                   const struct metrics_source *sources, size_t n_sources, char **out,
                   size_t *out_len)
{
    struct metrics_writer w = {0};
    struct buf b = {0};
    struct cache_counters *k = malloc(sizeof(*k));
    if (!k)
        return -ENOMEM;
    cache_counters(c, k);
    const struct cache_snapshot *s = cache_acquire(c);
    int64_t now = clock_mono_ms();

    local_gauges(&b, s, now, p);
    cluster_gauges(&b, s);
    counters(&b, k);

    family(&b, "etcd_agent_info", "gauge",
           "Always 1; labels: the agent's version and the local etcd's version.");
    put(&b, "etcd_agent_info{version=\"");
    put_label_value(&b, version ? version : "");
    put(&b, "\",etcd_version=\"");
    put_label_value(&b, s->local.have_status ? s->local.status.version : "");
    put(&b, "\"} 1\n");
    cache_release(c, s);

    w.b = b;
    for (size_t i = 0; i < n_sources; i++)
        sources[i].fn(sources[i].arg, &w);
    b = w.b;

    free(k);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}
