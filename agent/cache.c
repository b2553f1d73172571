/* cache.c - copy-on-write snapshots of the probe results, and the agent's counters.
 *
 * Writers (probe threads) copy the current snapshot, change their part and swap the pointer
 * under a mutex; readers hold a reference, so neither waits on the other for longer than a
 * pointer swap. What goes into a snapshot is probe.c's and promote.c's business. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

const double cache_probe_bucket_bounds[CACHE_PROBE_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

struct cache {
    pthread_mutex_t mu;
    struct cache_snapshot *cur;
    int64_t start_ms;
    struct cache_counters counters; /* under mu */
};

static const char *const call_names[CACHE_CALL_COUNT] = {
    [CACHE_CALL_STATUS] = "status",
    [CACHE_CALL_RANGE] = "range",
    [CACHE_CALL_ALARM] = "alarm",
    [CACHE_CALL_MEMBER_LIST] = "member_list",
    [CACHE_CALL_MEMBER_STATUS] = "member_status",
    [CACHE_CALL_PROMOTE] = "promote",
};

const char *cache_call_name(enum cache_call c)
{
    return (unsigned)c < CACHE_CALL_COUNT ? call_names[c] : "unknown";
}

const char *cache_probe_name(enum cache_probe p)
{
    return p == CACHE_PROBE_LOCAL ? "local" : "cluster";
}

struct cache *cache_new(int64_t start_ms)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cur = calloc(1, sizeof(*c->cur));
    if (!c->cur) {
        free(c);
        return NULL;
    }
    c->cur->refs = 1; /* the cache's own reference */
    c->start_ms = start_ms;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    /* All readers must be gone: the cache's reference is the last. */
    free(c->cur);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int64_t cache_start_ms(const struct cache *c)
{
    return c->start_ms;
}

const struct cache_snapshot *cache_acquire(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    struct cache_snapshot *s = c->cur;
    s->refs++;
    pthread_mutex_unlock(&c->mu);
    return s;
}

void cache_release(struct cache *c, const struct cache_snapshot *s)
{
    if (!s)
        return;
    /* refs is only touched under mu; a snapshot is freed by whoever drops the last reference. */
    struct cache_snapshot *m = (struct cache_snapshot *)(uintptr_t)s;
    pthread_mutex_lock(&c->mu);
    bool last = --m->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        free(m);
}

enum part { PART_LOCAL, PART_CLUSTER, PART_PROMOTE, PART_MAINT, PART_BACKUP };

static int publish(struct cache *c, enum part part, const void *data)
{
    struct cache_snapshot *n = malloc(sizeof(*n));
    if (!n)
        return -ENOMEM;
    /* Writers are few (two threads, once a second); copying under the lock keeps parts
     * published by different threads from overwriting each other. */
    pthread_mutex_lock(&c->mu);
    struct cache_snapshot *old = c->cur;
    memcpy(n, old, sizeof(*n));
    switch (part) {
    case PART_LOCAL:
        memcpy(&n->local, data, sizeof(n->local));
        break;
    case PART_CLUSTER:
        memcpy(&n->cluster, data, sizeof(n->cluster));
        break;
    case PART_PROMOTE:
        memcpy(&n->promote, data, sizeof(n->promote));
        break;
    case PART_MAINT:
        memcpy(&n->maint, data, sizeof(n->maint));
        break;
    case PART_BACKUP:
        memcpy(&n->backup, data, sizeof(n->backup));
        break;
    }
    n->refs = 1;
    c->cur = n;
    bool last = --old->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        free(old);
    return 0;
}

int cache_publish_local(struct cache *c, const struct cache_local *local)
{
    return publish(c, PART_LOCAL, local);
}

int cache_publish_cluster(struct cache *c, const struct cache_cluster *cluster)
{
    return publish(c, PART_CLUSTER, cluster);
}

int cache_publish_promote(struct cache *c, const struct cache_promote *promote)
{
    return publish(c, PART_PROMOTE, promote);
}

int cache_publish_maint(struct cache *c, const struct cache_maint *maint)
{
    return publish(c, PART_MAINT, maint);
}

int cache_publish_backup(struct cache *c, const struct cache_backup *backup)
{
    return publish(c, PART_BACKUP, backup);
}

void cache_count_probe(struct cache *c, enum cache_probe p, double seconds)
{
    if ((unsigned)p >= CACHE_PROBE_COUNT)
        return;
    pthread_mutex_lock(&c->mu);
    struct cache_histogram *h = &c->counters.probe[p];
    size_t i = 0;
    while (i < CACHE_PROBE_BUCKETS && seconds > cache_probe_bucket_bounds[i])
        i++;
    if (i < CACHE_PROBE_BUCKETS)
        h->buckets[i]++;
    else
        h->inf++;
    h->count++;
    h->sum += seconds;
    pthread_mutex_unlock(&c->mu);
}

void cache_count_error(struct cache *c, enum cache_call call)
{
    if ((unsigned)call >= CACHE_CALL_COUNT)
        return;
    pthread_mutex_lock(&c->mu);
    c->counters.errors[call]++;
    pthread_mutex_unlock(&c->mu);
}

void cache_count_promote(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    c->counters.promote_attempts++;
    pthread_mutex_unlock(&c->mu);
}

void cache_count_http(struct cache *c, const char *path, int code)
{
    pthread_mutex_lock(&c->mu);
    struct cache_counters *k = &c->counters;
    size_t i;
    for (i = 0; i < k->n_http; i++)
        if (k->http[i].code == code &&
            (k->http[i].path == path || strcmp(k->http[i].path, path) == 0))
            break;
    if (i == k->n_http) {
        if (k->n_http == CACHE_MAX_HTTP_SERIES) {
            k->http_dropped++;
            goto out;
        }
        k->http[i].path = path;
        k->http[i].code = code;
        k->n_http++;
    }
    k->http[i].count++;
out:
    pthread_mutex_unlock(&c->mu);
}

void cache_counters(struct cache *c, struct cache_counters *out)
{
    pthread_mutex_lock(&c->mu);
    memcpy(out, &c->counters, sizeof(*out));
    pthread_mutex_unlock(&c->mu);
}

void cache_verdict(const struct cache_cluster *cl, struct cache_verdict *v)
{
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < cl->n_members && i < CACHE_MAX_MEMBERS; i++) {
        const struct cache_member *m = &cl->members[i];
        if (!m->is_learner) {
            v->n_voters++;
            if (m->healthy)
                v->n_healthy_voters++;
        }
        if (!m->healthy)
            v->failing[v->n_failing++] = i;
    }
    v->quorum = cl->ok && v->n_voters > 0 && v->n_healthy_voters > v->n_voters / 2;
    /* Recovery replaces one member; it is safe only if every other one is healthy, which
     * also means the survivors hold quorum. A truncated or unknown table is not enough. */
    v->recoverable = cl->ok && !cl->truncated && v->n_failing == 1 && v->quorum;
}
