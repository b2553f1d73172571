/* probe.c - the two probe threads: the local member every interval, the cluster table every
 * few seconds, each with its own gRPC channels, results published into the cache.
 *
 * Decisions over the results (readiness, verdicts) are health.c's and cache.c's; promotion is
 * promote.c's (called from the cluster thread); the typed etcd calls are common/etcd.c's. */
#include "probe.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "bounds.h"
#include "clock.h"
#include "etcd.h"
#include "grpc.h"
#include "log.h"
#include "promote.h"

/* A channel kept across rounds, keyed by its joined endpoint list. */
struct probe_chan {
    char key[PROBE_KEY_MAX];
    struct grpc_channel *ch;
    bool used; /* touched this round; unused ones are freed after it */
};

struct probe {
    struct probe_config cfg;
    struct cache *cache;
    int timeout_ms;
    struct grpc_channel *local;   /* local thread only */
    struct grpc_channel *listing; /* cluster thread: MemberList fallback (other members) */
    char listing_key[PROBE_KEY_MAX];
    struct grpc_channel *cluster_local; /* cluster thread: MemberList on the local member */
    struct probe_chan chans[CACHE_MAX_MEMBERS + GRPC_MAX_ENDPOINTS];
    struct promote *promote;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stop;
    pthread_t local_thread, cluster_thread;
    bool local_started, cluster_started;
};

int probe_call_timeout_ms(uint64_t interval_ms)
{
    if (interval_ms < PROBE_MIN_TIMEOUT_MS)
        return PROBE_MIN_TIMEOUT_MS;
    if (interval_ms > PROBE_MAX_TIMEOUT_MS)
        return PROBE_MAX_TIMEOUT_MS;
    return (int)interval_ms;
}

/* Wait until deadline (monotonic ms) or stop. Returns true if stopping. */
static bool wait_until(struct probe *p, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_mutex_lock(&p->mu);
    while (!p->stop && clock_mono_ms() < deadline_ms)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
            break;
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

/* Checked between calls so that a stop does not wait for a whole round of timeouts. */
static bool stopping(struct probe *p)
{
    pthread_mutex_lock(&p->mu);
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static void set_error(char *dst, const char *call, const struct grpc_status *st)
{
    /* Truncation keeps the start, which names the call and the code. */
    (void)snprintf(dst, CACHE_MAX_ERROR, "%s: %s: %.190s", call, grpc_code_name(st->code),
                   st->message);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    (void)snprintf(dst, cap, "%s", src ? src : "");
}

static void copy_status(struct cache_status *dst, const struct etcd_status *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->cluster_id = src->header.cluster_id;
    dst->member_id = src->header.member_id;
    dst->revision = src->header.revision;
    copy_str(dst->version, sizeof(dst->version), src->version);
    dst->db_size = src->db_size;
    dst->db_size_in_use = src->db_size_in_use;
    dst->leader = src->leader;
    dst->raft_index = src->raft_index;
    dst->raft_term = src->raft_term;
    dst->raft_applied_index = src->raft_applied_index;
    dst->is_learner = src->is_learner;
    for (size_t i = 0; i < src->n_errors && i < CACHE_MAX_STATUS_ERRORS; i++)
        copy_str(dst->errors[dst->n_errors++], CACHE_MAX_ERROR, src->errors[i]);
}

static struct grpc_channel *new_channel(struct probe *p, const char *const *eps, size_t n,
                                        int connect_timeout_ms)
{
    char err[256];
    struct grpc_channel_config cc = {
        .endpoints = eps,
        .n_endpoints = n,
        .tls = p->cfg.tls,
        .connect_timeout_ms = connect_timeout_ms,
        /* Probes move kilobytes: small windows keep etcd's per-stream buffers small. */
        .window_size = 256 * 1024,
    };
    struct grpc_channel *ch = grpc_channel_new(&cc, err, sizeof(err));
    if (!ch)
        log_msg(LOG_ERROR, "probe: channel to %s: %s", n ? eps[0] : "(none)", err);
    return ch;
}

/* A transport failure or a deadline means the member is not reachable now: the other calls of
 * the round would only wait out their own timeouts. */
static bool unreachable(const struct grpc_status *st)
{
    return st->code == GRPC_UNAVAILABLE || st->code == GRPC_DEADLINE_EXCEEDED;
}

/* ---- local thread --------------------------------------------------------------------------- */

static void local_round(struct probe *p, struct cache_local *l)
{
    int64_t t0 = clock_mono_ms();
    struct grpc_status st;
    struct etcd_status es;
    bool answered = false;

    l->status_ok = etcd_status(p->local, p->timeout_ms, &es, &st) == GRPC_OK;
    if (l->status_ok) {
        copy_status(&l->status, &es);
        l->have_status = true;
        l->status_at_ms = clock_mono_ms();
        l->status_error[0] = '\0';
        answered = true;
        etcd_status_free(&es);
    } else {
        set_error(l->status_error, "status", &st);
        cache_count_error(p->cache, CACHE_CALL_STATUS);
    }
    bool skip = !l->status_ok && unreachable(&st);
    char skipped[CACHE_MAX_ERROR];
    (void)snprintf(skipped, sizeof(skipped), "skipped: %.240s", l->status_error);

    skip = skip || stopping(p);
    if (skip) {
        l->range_ok = false;
        copy_str(l->range_error, CACHE_MAX_ERROR, skipped);
    } else if (etcd_range_serializable(p->local, PROBE_READ_KEY, p->timeout_ms, NULL, NULL, &st) ==
               GRPC_OK) {
        l->range_ok = true;
        l->range_error[0] = '\0';
        answered = true;
    } else {
        l->range_ok = false;
        set_error(l->range_error, "range", &st);
        cache_count_error(p->cache, CACHE_CALL_RANGE);
    }

    struct etcd_alarm *alarms = NULL;
    size_t n_alarms = 0;
    l->n_alarms = 0;
    if (skip) {
        l->alarms_ok = false;
        copy_str(l->alarm_error, CACHE_MAX_ERROR, skipped);
    } else if (l->status_ok && l->status.is_learner) {
        /* etcd rejects Alarm on learners ("rpc not supported for learner"): not an error of
         * the member, and readiness fails on the learner check anyway. */
        l->alarms_ok = false;
        copy_str(l->alarm_error, CACHE_MAX_ERROR, "skipped: a learner cannot list alarms");
    } else if (etcd_alarm_list(p->local, p->timeout_ms, NULL, &alarms, &n_alarms, &st) == GRPC_OK) {
        l->alarms_ok = true;
        l->alarm_error[0] = '\0';
        for (size_t i = 0; i < n_alarms && l->n_alarms < CACHE_MAX_ALARMS; i++) {
            if (alarms[i].type == ETCD_ALARM_NONE)
                continue;
            l->alarms[l->n_alarms].member_id = alarms[i].member_id;
            l->alarms[l->n_alarms].type = alarms[i].type;
            l->n_alarms++;
        }
        free(alarms);
    } else {
        l->alarms_ok = false;
        set_error(l->alarm_error, "alarm list", &st);
        cache_count_error(p->cache, CACHE_CALL_ALARM);
    }

    int64_t t1 = clock_mono_ms();
    l->took_ms = (uint32_t)(t1 - t0);
    l->probed_at_ms = t1;
    if (answered)
        l->answered_at_ms = t1;
    cache_count_probe(p->cache, CACHE_PROBE_LOCAL, (double)(t1 - t0) / 1000.0);
}

static void *local_main(void *arg)
{
    struct probe *p = arg;
    struct cache_local *l = calloc(1, sizeof(*l));
    if (!l) {
        log_msg(LOG_ERROR, "probe: out of memory; local probe not running");
        return NULL;
    }
    bool was_ok = true;
    int64_t next = clock_mono_ms();
    while (!wait_until(p, next)) {
        local_round(p, l);
        if (cache_publish_local(p->cache, l) < 0)
            log_msg(LOG_WARN, "probe: out of memory publishing the local probe");
        if (l->status_ok != was_ok) {
            /* Log transitions only: a down member must not flood the log once a second. */
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "endpoint",
                                    grpc_channel_endpoint(p->local)
                                        ? grpc_channel_endpoint(p->local)
                                        : p->cfg.endpoints[0]);
            if (!l->status_ok)
                cJSON_AddStringToObject(f, "error", l->status_error);
            log_event(l->status_ok ? LOG_INFO : LOG_WARN,
                      l->status_ok ? "local member answers" : "local member does not answer", f);
            was_ok = l->status_ok;
        }
        /* Fixed rate, not fixed delay: a slow round does not stretch the period, and a round
         * longer than the period starts the next one at once instead of bunching up. */
        next += (int64_t)p->cfg.interval_ms;
        int64_t now = clock_mono_ms();
        if (next < now)
            next = now;
    }
    free(l);
    return NULL;
}

/* ---- cluster thread ------------------------------------------------------------------------- */

static void join_key(char *key, size_t cap, const char *const *eps, size_t n)
{
    size_t len = 0;
    key[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(key + len, cap - len, "%s%s", i ? "," : "", eps[i]);
        if (w < 0 || (size_t)w >= cap - len)
            return; /* truncated keys only cost a reconnect */
        len += (size_t)w;
    }
}

/* The cached channel for this endpoint list, made on first use. */
static struct grpc_channel *chan_get(struct probe *p, const char *const *eps, size_t n)
{
    char key[PROBE_KEY_MAX];
    join_key(key, sizeof(key), eps, n);
    struct probe_chan *free_slot = NULL;
    size_t cap = ARRAY_SIZE(p->chans);
    for (size_t i = 0; i < cap; i++) {
        if (p->chans[i].ch && strcmp(p->chans[i].key, key) == 0) {
            p->chans[i].used = true;
            return p->chans[i].ch;
        }
        if (!p->chans[i].ch && !free_slot)
            free_slot = &p->chans[i];
    }
    if (!free_slot)
        return NULL;
    free_slot->ch = new_channel(p, eps, n, PROBE_MEMBER_TIMEOUT_MS);
    if (!free_slot->ch)
        return NULL;
    copy_str(free_slot->key, sizeof(free_slot->key), key);
    free_slot->used = true;
    return free_slot->ch;
}

static void chans_sweep(struct probe *p)
{
    for (size_t i = 0; i < ARRAY_SIZE(p->chans); i++) {
        if (p->chans[i].ch && !p->chans[i].used) {
            grpc_channel_free(p->chans[i].ch);
            p->chans[i].ch = NULL;
        }
        p->chans[i].used = false;
    }
}

static void copy_member(struct cache_member *dst, const struct etcd_member *m)
{
    memset(dst, 0, sizeof(*dst));
    dst->id = m->id;
    copy_str(dst->name, sizeof(dst->name), m->name);
    for (size_t i = 0; i < m->n_peer_urls && i < CACHE_MAX_URLS; i++)
        copy_str(dst->peer_urls[dst->n_peer_urls++], CACHE_MAX_URL, m->peer_urls[i]);
    for (size_t i = 0; i < m->n_client_urls && i < CACHE_MAX_URLS; i++)
        copy_str(dst->client_urls[dst->n_client_urls++], CACHE_MAX_URL, m->client_urls[i]);
    dst->is_learner = m->is_learner;
    dst->started = m->name && m->name[0] && m->n_client_urls > 0;
}

/* The endpoints to ask MemberList when the local member cannot answer (down, or a learner):
 * --cluster-endpoints, else the other started members' client URLs from the last table. */
static size_t listing_endpoints(struct probe *p, const struct cache_cluster *prev,
                                uint64_t local_id, const char **eps, size_t cap)
{
    size_t n = 0;
    if (p->cfg.n_cluster_endpoints) {
        for (size_t i = 0; i < p->cfg.n_cluster_endpoints && n < cap; i++)
            eps[n++] = p->cfg.cluster_endpoints[i];
        return n;
    }
    for (size_t i = 0; i < prev->n_members; i++) {
        const struct cache_member *m = &prev->members[i];
        if (m->id == local_id || m->is_learner)
            continue;
        for (size_t j = 0; j < m->n_client_urls && n < cap; j++)
            eps[n++] = m->client_urls[j];
    }
    return n;
}

static int member_list(struct probe *p, const struct cache_snapshot *s,
                       struct etcd_member_list *out, char *err)
{
    struct grpc_status st;
    /* A learner cannot answer MemberList: go straight to the others. */
    if (s->local.status_ok && s->local.status.is_learner) {
        copy_str(err, CACHE_MAX_ERROR, "member list: the local member is a learner");
    } else if (etcd_member_list(p->cluster_local, p->timeout_ms, out, &st) == GRPC_OK) {
        return 0;
    } else {
        set_error(err, "member list", &st);
        cache_count_error(p->cache, CACHE_CALL_MEMBER_LIST);
    }

    const char *eps[GRPC_MAX_ENDPOINTS];
    uint64_t local_id = s->local.have_status ? s->local.status.member_id : 0;
    size_t n = listing_endpoints(p, &s->cluster, local_id, eps, GRPC_MAX_ENDPOINTS);
    if (n == 0)
        return -1;
    char key[PROBE_KEY_MAX];
    join_key(key, sizeof(key), eps, n);
    if (!p->listing || strcmp(key, p->listing_key) != 0) {
        grpc_channel_free(p->listing);
        p->listing = new_channel(p, eps, n, PROBE_MEMBER_TIMEOUT_MS);
        copy_str(p->listing_key, sizeof(p->listing_key), key);
        if (!p->listing)
            return -1;
    }
    if (etcd_member_list(p->listing, p->timeout_ms, out, &st) == GRPC_OK)
        return 0;
    char first[CACHE_MAX_ERROR];
    copy_str(first, sizeof(first), err);
    char second[CACHE_MAX_ERROR];
    set_error(second, "member list via other members", &st);
    (void)snprintf(err, CACHE_MAX_ERROR, "%.120s; %.120s", first, second);
    cache_count_error(p->cache, CACHE_CALL_MEMBER_LIST);
    return -1;
}

/* Status of one member over ch; fills answered/took/status/error. */
static void member_status(struct probe *p, struct grpc_channel *ch, struct cache_member *m,
                          struct grpc_status *st)
{
    struct etcd_status es;
    int64_t t0 = clock_mono_ms();
    m->answered = ch && etcd_status(ch, PROBE_MEMBER_TIMEOUT_MS, &es, st) == GRPC_OK;
    m->took_ms = (uint32_t)(clock_mono_ms() - t0);
    if (m->answered) {
        copy_status(&m->status, &es);
        etcd_status_free(&es);
    } else {
        if (!ch) {
            st->code = GRPC_UNAVAILABLE;
            copy_str(st->message, sizeof(st->message), "no channel");
        }
        set_error(m->error, "status", st);
        cache_count_error(p->cache, CACHE_CALL_MEMBER_STATUS);
    }
}

/* With --cluster-endpoints the URLs do not say which member they reach: ask each endpoint and
 * match the answers to members by the responding member ID. */
static void status_via_cluster_endpoints(struct probe *p, struct cache_cluster *cl,
                                         uint64_t local_id)
{
    char errors[CACHE_MAX_ERROR] = "";
    for (size_t e = 0; e < p->cfg.n_cluster_endpoints; e++) {
        struct cache_member tmp;
        memset(&tmp, 0, sizeof(tmp));
        struct grpc_status st;
        const char *ep = p->cfg.cluster_endpoints[e];
        member_status(p, chan_get(p, &ep, 1), &tmp, &st);
        if (!tmp.answered) {
            if (!errors[0])
                (void)snprintf(errors, sizeof(errors), "%.60s: %.180s", ep, tmp.error);
            continue;
        }
        for (size_t i = 0; i < cl->n_members; i++) {
            struct cache_member *m = &cl->members[i];
            if (m->id != tmp.status.member_id || m->id == local_id || m->answered)
                continue;
            m->answered = true;
            m->took_ms = tmp.took_ms;
            m->status = tmp.status;
        }
    }
    for (size_t i = 0; i < cl->n_members; i++) {
        struct cache_member *m = &cl->members[i];
        if (!m->answered && m->id != local_id && !m->error[0])
            (void)snprintf(m->error, sizeof(m->error), "no answer via --cluster-endpoints%s%.200s",
                           errors[0] ? "; " : "", errors);
    }
}

static void cluster_round(struct probe *p, struct cache_cluster *cl)
{
    int64_t t0 = clock_mono_ms();
    const struct cache_snapshot *s = cache_acquire(p->cache);
    struct etcd_member_list ml;
    char err[CACHE_MAX_ERROR] = "";
    bool listed = member_list(p, s, &ml, err) == 0;

    /* The snapshot is immutable: hold it for the round instead of copying it. */
    const struct cache_cluster *prev = &s->cluster;
    const struct cache_local *local = &s->local;
    uint64_t local_id = local->have_status ? local->status.member_id : 0;
    bool local_fresh = local->probed_at_ms != 0;

    cl->ok = listed;
    copy_str(cl->error, sizeof(cl->error), listed ? "" : err);
    if (listed) {
        cl->n_members = 0;
        cl->truncated = ml.n_members > CACHE_MAX_MEMBERS;
        for (size_t i = 0; i < ml.n_members && i < CACHE_MAX_MEMBERS; i++)
            copy_member(&cl->members[cl->n_members++], &ml.members[i]);
        etcd_member_list_free(&ml);
    } else {
        /* Keep the last known membership and re-probe it: the table still says who answers,
         * but the verdict is withheld (cl->ok false). */
        cl->n_members = prev->n_members;
        cl->truncated = prev->truncated;
        for (size_t i = 0; i < prev->n_members; i++) {
            struct cache_member *m = &cl->members[i];
            *m = prev->members[i];
            m->answered = m->healthy = false;
            m->took_ms = 0;
            m->error[0] = '\0';
            memset(&m->status, 0, sizeof(m->status));
        }
    }

    for (size_t i = 0; i < cl->n_members; i++) {
        struct cache_member *m = &cl->members[i];
        if (stopping(p)) {
            copy_str(m->error, sizeof(m->error), "not probed: stopping");
            continue;
        }
        if (m->id == local_id && local_fresh) {
            /* The local probe asked this member a moment ago: no second Status. */
            m->answered = local->status_ok;
            m->took_ms = local->took_ms;
            if (local->status_ok)
                m->status = local->status;
            else
                copy_str(m->error, sizeof(m->error), local->status_error);
        } else if (!m->started) {
            copy_str(m->error, sizeof(m->error), "not started");
        } else if (p->cfg.n_cluster_endpoints == 0) {
            const char *eps[CACHE_MAX_URLS];
            for (size_t j = 0; j < m->n_client_urls; j++)
                eps[j] = m->client_urls[j];
            struct grpc_status st;
            member_status(p, chan_get(p, eps, m->n_client_urls), m, &st);
        }
    }
    if (p->cfg.n_cluster_endpoints)
        status_via_cluster_endpoints(p, cl, local_id);
    chans_sweep(p);
    cache_release(p->cache, s);

    for (size_t i = 0; i < cl->n_members; i++) {
        struct cache_member *m = &cl->members[i];
        m->healthy = m->answered && m->status.leader != 0 && m->status.n_errors == 0;
        if (m->answered && m->status.leader == 0)
            copy_str(m->error, sizeof(m->error), "no leader");
        else if (m->answered && m->status.n_errors)
            copy_str(m->error, sizeof(m->error), m->status.errors[0]);
    }

    int64_t t1 = clock_mono_ms();
    cl->took_ms = (uint32_t)(t1 - t0);
    cl->probed_at_ms = t1;
    cache_count_probe(p->cache, CACHE_PROBE_CLUSTER, (double)(t1 - t0) / 1000.0);
}

static void *cluster_main(void *arg)
{
    struct probe *p = arg;
    struct cache_cluster *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        log_msg(LOG_ERROR, "probe: out of memory; cluster probe not running");
        return NULL;
    }
    /* Let the local probe go first so the table can reuse its answer. */
    int64_t next_cluster =
        clock_mono_ms() + (int64_t)(p->cfg.interval_ms < 1000 ? p->cfg.interval_ms : 1000);
    int64_t tick = next_cluster;
    bool was_ok = true;
    while (!wait_until(p, tick)) {
        int64_t now = clock_mono_ms();
        if (now >= next_cluster) {
            cluster_round(p, cl);
            if (cache_publish_cluster(p->cache, cl) < 0)
                log_msg(LOG_WARN, "probe: out of memory publishing the cluster table");
            if (cl->ok != was_ok) {
                cJSON *f = cJSON_CreateObject();
                if (!cl->ok)
                    cJSON_AddStringToObject(f, "error", cl->error);
                log_event(cl->ok ? LOG_INFO : LOG_WARN,
                          cl->ok ? "member list answers" : "member list fails", f);
                was_ok = cl->ok;
            }
            next_cluster += (int64_t)p->cfg.cluster_interval_ms;
            if (next_cluster < clock_mono_ms())
                next_cluster = clock_mono_ms();
        }
        if (!stopping(p))
            promote_step(p->promote, p->cache);
        tick = clock_mono_ms() + PROBE_TICK_MS;
        if (tick > next_cluster)
            tick = next_cluster;
    }
    free(cl);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void probe_free(struct probe *p)
{
    grpc_channel_free(p->local);
    grpc_channel_free(p->cluster_local);
    grpc_channel_free(p->listing);
    for (size_t i = 0; i < ARRAY_SIZE(p->chans); i++)
        grpc_channel_free(p->chans[i].ch);
    promote_free(p->promote);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

struct probe *probe_start(const struct probe_config *cfg, struct cache *cache, char *err,
                          size_t err_len)
{
    if (cfg->n_endpoints == 0 || cfg->n_endpoints > GRPC_MAX_ENDPOINTS ||
        cfg->n_cluster_endpoints > GRPC_MAX_ENDPOINTS || cfg->interval_ms == 0) {
        (void)snprintf(err, err_len, "probe: need 1..%d endpoints and a non-zero interval",
                       GRPC_MAX_ENDPOINTS);
        return NULL;
    }
    struct probe *p = calloc(1, sizeof(*p));
    if (!p) {
        (void)snprintf(err, err_len, "probe: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    if (!p->cfg.cluster_interval_ms)
        p->cfg.cluster_interval_ms = PROBE_CLUSTER_INTERVAL_MS;
    p->cache = cache;
    p->timeout_ms = probe_call_timeout_ms(cfg->interval_ms);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);

    struct grpc_channel_config cc = {
        .endpoints = cfg->endpoints,
        .n_endpoints = cfg->n_endpoints,
        .tls = cfg->tls,
        .connect_timeout_ms = p->timeout_ms,
        .window_size = 256 * 1024,
    };
    p->local = grpc_channel_new(&cc, err, err_len);
    p->cluster_local = p->local ? grpc_channel_new(&cc, err, err_len) : NULL;
    if (!p->local || !p->cluster_local)
        goto fail;
    p->promote = promote_new(cfg->tls, cfg->cluster_endpoints, cfg->n_cluster_endpoints);
    if (!p->promote) {
        (void)snprintf(err, err_len, "probe: out of memory");
        goto fail;
    }
    int rc = pthread_create(&p->local_thread, NULL, local_main, p);
    if (rc == 0) {
        p->local_started = true;
        rc = pthread_create(&p->cluster_thread, NULL, cluster_main, p);
        p->cluster_started = rc == 0;
    }
    if (rc != 0) {
        (void)snprintf(err, err_len, "probe: pthread_create: %s", strerror(rc));
        probe_stop(p);
        return NULL;
    }
    return p;
fail:
    probe_free(p);
    return NULL;
}

void probe_stop(struct probe *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->local_started)
        pthread_join(p->local_thread, NULL);
    if (p->cluster_started)
        pthread_join(p->cluster_thread, NULL);
    probe_free(p);
}
