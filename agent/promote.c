/* promote.c - promote the local learner with MemberPromote on a voter, with backoff.
 *
 * A learner cannot serve MemberPromote (etcd rejects most RPCs on learners), so the call goes
 * to the leader's client URLs first, then the other voters' (or --cluster-endpoints); etcd
 * forwards to the leader anyway. Until the learner has caught up etcd answers "can only
 * promote a learner member which is in sync with leader": back off 1 s, doubling to 30 s.
 * What is a learner comes from the probe cache (probe.c). */
#include "promote.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "clock.h"
#include "etcd.h"
#include "grpc.h"
#include "log.h"

struct promote {
    struct tls_ctx *tls;
    const char *const *cluster_endpoints;
    size_t n_cluster_endpoints;
    struct grpc_channel *ch;
    char key[PROMOTE_KEY_MAX]; /* endpoints of ch, joined */
    uint64_t backoff_ms;
    size_t rotate;          /* endpoints skipped after a "not supported for learner" answer */
    int64_t promoted_at_ms; /* a Status older than this still says "learner" */
    struct cache_promote state;
};

uint64_t promote_next_backoff(uint64_t cur_ms)
{
    if (cur_ms < PROMOTE_BACKOFF_MIN_MS)
        return PROMOTE_BACKOFF_MIN_MS;
    return cur_ms >= PROMOTE_BACKOFF_MAX_MS / 2 ? PROMOTE_BACKOFF_MAX_MS : cur_ms * 2;
}

struct promote *promote_new(struct tls_ctx *tls, const char *const *cluster_endpoints,
                            size_t n_cluster_endpoints)
{
    struct promote *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->tls = tls;
    p->cluster_endpoints = cluster_endpoints;
    p->n_cluster_endpoints = n_cluster_endpoints;
    return p;
}

void promote_free(struct promote *p)
{
    if (!p)
        return;
    grpc_channel_free(p->ch);
    free(p);
}

static void add_urls(const struct cache_member *m, const char **eps, size_t *n)
{
    for (size_t j = 0; j < m->n_client_urls && *n < GRPC_MAX_ENDPOINTS; j++)
        eps[(*n)++] = m->client_urls[j];
}

size_t promote_order_endpoints(const char *const *given, size_t n_given,
                               const char *const *self_urls, size_t n_self, size_t rotate,
                               const char **out)
{
    const char *kept[GRPC_MAX_ENDPOINTS] = {0};
    size_t n = 0;
    for (size_t i = 0; i < n_given && n < GRPC_MAX_ENDPOINTS; i++) {
        bool self = false;
        for (size_t j = 0; j < n_self && !self; j++)
            self = strcmp(given[i], self_urls[j]) == 0;
        if (!self)
            kept[n++] = given[i];
    }
    if (n == 0) /* only our own URLs: try them rather than nothing */
        for (size_t i = 0; i < n_given && n < GRPC_MAX_ENDPOINTS; i++)
            kept[n++] = given[i];
    for (size_t i = 0; i < n; i++)
        out[i] = kept[(i + rotate) % n];
    return n;
}

/* Voters' client URLs, the leader's first. With --cluster-endpoints: that list without the
 * local member's own client URLs (a learner cannot serve MemberPromote; the list is usually
 * the same for every pod), rotated past endpoints that answered as a learner. */
static size_t voter_endpoints(const struct promote *p, const struct cache_snapshot *s,
                              uint64_t self, const char **eps)
{
    size_t n = 0;
    const struct cache_cluster *cl = &s->cluster;
    const struct cache_member *me = NULL;
    for (size_t i = 0; i < cl->n_members; i++)
        if (cl->members[i].id == self)
            me = &cl->members[i];
    if (p->n_cluster_endpoints) {
        const char *self_urls[GRPC_MAX_ENDPOINTS];
        size_t n_self = 0;
        for (size_t j = 0; me && j < me->n_client_urls && n_self < GRPC_MAX_ENDPOINTS; j++)
            self_urls[n_self++] = me->client_urls[j];
        return promote_order_endpoints(p->cluster_endpoints, p->n_cluster_endpoints, self_urls,
                                       n_self, p->rotate, eps);
    }
    uint64_t leader = s->local.status.leader;
    for (size_t i = 0; i < cl->n_members; i++)
        if (cl->members[i].id == leader && leader != self)
            add_urls(&cl->members[i], eps, &n);
    for (size_t i = 0; i < cl->n_members; i++) {
        const struct cache_member *m = &cl->members[i];
        if (m->id != leader && m->id != self && !m->is_learner && m->started)
            add_urls(m, eps, &n);
    }
    return n;
}

static int ensure_channel(struct promote *p, const char **eps, size_t n, char *err, size_t err_len)
{
    char key[PROMOTE_KEY_MAX];
    size_t len = 0;
    key[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(key + len, sizeof(key) - len, "%s%s", i ? "," : "", eps[i]);
        if (w < 0 || (size_t)w >= sizeof(key) - len)
            break;
        len += (size_t)w;
    }
    if (p->ch && strcmp(key, p->key) == 0)
        return 0;
    grpc_channel_free(p->ch);
    struct grpc_channel_config cc = {
        .endpoints = eps, .n_endpoints = n, .tls = p->tls, .window_size = 256 * 1024};
    p->ch = grpc_channel_new(&cc, err, err_len);
    (void)snprintf(p->key, sizeof(p->key), "%s", key);
    return p->ch ? 0 : -1;
}

static void publish(struct promote *p, struct cache *cache)
{
    if (cache_publish_promote(cache, &p->state) < 0)
        log_msg(LOG_WARN, "promote: out of memory publishing the promotion state");
}

void promote_step(struct promote *p, struct cache *cache)
{
    const struct cache_snapshot *s = cache_acquire(cache);
    const struct cache_local *l = &s->local;
    int64_t now = clock_mono_ms();
    /* Only act on a current answer: a learner flag from a stale Status could promote a member
     * that is already a voter, or one that has since been removed. */
    bool learner = l->status_ok && l->status.is_learner && l->status_at_ms > p->promoted_at_ms;
    if (!learner) {
        if (p->state.active) {
            p->state.active = false;
            p->backoff_ms = 0;
            publish(p, cache);
        }
        goto out;
    }
    if (!p->state.active) {
        p->state.active = true;
        p->state.next_try_ms = now;
        log_msg(LOG_INFO, "promote: local member %" PRIx64 " is a learner; promoting it",
                l->status.member_id);
    }
    if (now < p->state.next_try_ms)
        goto out;

    uint64_t self = l->status.member_id;
    const char *eps[GRPC_MAX_ENDPOINTS];
    size_t n = voter_endpoints(p, s, self, eps);
    char err[CACHE_MAX_ERROR] = "";
    bool ok = false;
    p->state.attempts++;
    p->state.last_try_ms = now;
    cache_count_promote(cache);
    if (n == 0) {
        (void)snprintf(err, sizeof(err),
                       "no voter client URL known yet (set --cluster-endpoints "
                       "when the member starts as a learner)");
    } else if (ensure_channel(p, eps, n, err, sizeof(err)) == 0) {
        struct grpc_status st;
        if (etcd_member_promote(p->ch, self, PROMOTE_TIMEOUT_MS, NULL, &st) == GRPC_OK)
            ok = true;
        else
            (void)snprintf(err, sizeof(err), "%s: %.150s (via %.60s)", grpc_code_name(st.code),
                           st.message, st.endpoint);
    }
    if (!ok)
        cache_count_error(cache, CACHE_CALL_PROMOTE);

    cJSON *f = cJSON_CreateObject();
    char id[17];
    cJSON_AddStringToObject(f, "member", etcd_id_hex(self, id));
    cJSON_AddNumberToObject(f, "attempt", (double)p->state.attempts);
    if (ok) {
        p->state.promoted = true;
        p->state.active = false;
        p->promoted_at_ms = clock_mono_ms();
        p->state.last_error[0] = '\0';
        p->backoff_ms = 0;
        log_event(LOG_INFO, "promote: learner promoted to voter", f);
    } else {
        /* "not in sync" is the expected answer while the learner catches up; other errors
         * (leader election, unreachable voters) get the same backoff. */
        p->backoff_ms = promote_next_backoff(p->backoff_ms);
        /* The channel stays on the first endpoint that connects; if that is a learner
         * (ourselves, or another learner), the next try starts at the next endpoint. */
        if (strstr(err, "not supported for learner"))
            p->rotate++;
        p->state.next_try_ms = now + (int64_t)p->backoff_ms;
        (void)snprintf(p->state.last_error, sizeof(p->state.last_error), "%s", err);
        cJSON_AddStringToObject(f, "error", err);
        cJSON_AddNumberToObject(f, "retry_in_ms", (double)p->backoff_ms);
        log_event(strstr(err, "in sync") ? LOG_INFO : LOG_WARN, "promote: not promoted yet", f);
    }
    publish(p, cache);
out:
    cache_release(cache, s);
}
