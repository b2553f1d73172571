/* maint.c - the maintenance thread: observe every member, ask maint_plan.c for one step, carry
 * it out, publish the outcome into the cache; HashKV checks on their own schedule.
 *
 * Only the agent whose member is the leader acts (maint_plan_next says so); every agent also
 * watches its own member for a defrag started by the coordinator (Status answers, serializable
 * reads stall while the member was due) so its probes can say "defragmenting". Decisions are
 * maint_plan.c's, HTTP rendering routes.c's and metrics.c's, etcd calls common/etcd.c's. */
#include "maint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounds.h"
#include "clock.h"
#include "divergent.h"
#include "etcd.h"
#include "grpc.h"
#include "httpsget.h"
#include "log.h"
#include "maint_peer.h"
#include "routes.h"

#define MAINT_KEY_MAX (CACHE_MAX_URLS * CACHE_MAX_URL)
#define MAINT_TARGETS (CACHE_MAX_MEMBERS + GRPC_MAX_ENDPOINTS)

/* One endpoint set (a member's client URLs, or one --cluster-endpoints entry) and its channel. */
struct target {
    char key[MAINT_KEY_MAX];
    const char *eps[CACHE_MAX_URLS];
    char urls[CACHE_MAX_URLS][CACHE_MAX_URL];
    size_t n;
    struct grpc_channel *ch;
    bool used;
};

struct quota_entry {
    uint64_t id;
    int64_t quota;
    int64_t at_ms;
};

struct skip_count {
    const char *reason; /* static label */
    uint64_t n;
};

struct maint {
    struct maint_config cfg;
    struct target targets[MAINT_TARGETS];
    struct quota_entry quotas[CACHE_MAX_MEMBERS];
    struct cache_maint state;                 /* published copy; thread only */
    int64_t compacted_rev;                    /* last revision we compacted to under NOSPACE */
    uint64_t nospace_done[CACHE_MAX_MEMBERS]; /* defragmented by us in this NOSPACE episode */
    size_t n_nospace_done;
    int64_t next_defrag_ms, next_hashkv_ms;
    bool local_due;       /* the local member was due when it last answered reads */
    int64_t next_peer_ms; /* next time a follower asks the leader's agent for its verdict */
    int64_t peer_rev;     /* the verdict revision it acted on last (once per outcome) */
    uint64_t peer_from;   /* ... the member whose agent gave it */
    enum maint_marker_action peer_action; /* ... what it meant for our marker */
    uint32_t peer_hash;                   /* ... and our member's hash in it */
    char peer_error[256];                 /* the last failure to learn it, logged once */
    struct route route;                   /* GET /hashkv */

    pthread_mutex_t mu; /* counters below, read by the metrics source */
    double defrag_last_ts, defrag_last_duration;
    uint64_t defrag_total, defrag_failures, freed_bytes;
    struct skip_count skips[MAINT_MAX_SKIP_REASONS];
    bool stop;
    pthread_cond_t cv;
    pthread_t thread;
    bool started;
};

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    (void)snprintf(dst, cap, "%s", src ? src : "");
}

struct maint *maint_new(const struct maint_config *cfg)
{
    struct maint *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->cfg = *cfg;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    m->state.enabled = true;
    m->state.defrag_timeout_ms = cfg->defrag_timeout_ms;
    int64_t now = clock_mono_ms();
    m->next_defrag_ms = now + (int64_t)cfg->defrag_interval_ms;
    m->next_hashkv_ms = now + (int64_t)cfg->hashkv_interval_ms;
    m->next_peer_ms = now + (int64_t)cfg->hashkv_interval_ms;
    return m;
}

static bool stopping(struct maint *m)
{
    pthread_mutex_lock(&m->mu);
    bool s = m->stop;
    pthread_mutex_unlock(&m->mu);
    return s;
}

static bool wait_ms(struct maint *m, int64_t ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
    pthread_mutex_lock(&m->mu);
    while (!m->stop && clock_mono_ms() < deadline)
        if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT)
            break;
    bool s = m->stop;
    pthread_mutex_unlock(&m->mu);
    return s;
}

static void count_skip(struct maint *m, const char *reason)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < MAINT_MAX_SKIP_REASONS; i++) {
        if (!m->skips[i].reason)
            m->skips[i].reason = reason;
        if (strcmp(m->skips[i].reason, reason) == 0) {
            m->skips[i].n++;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- targets (channels) ------------------------------------------------------------------- */

static struct target *target_get(struct maint *m, const char (*urls)[CACHE_MAX_URL], size_t n)
{
    char key[MAINT_KEY_MAX] = "";
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(key + len, sizeof(key) - len, "%s%s", i ? "," : "", urls[i]);
        if (w < 0 || (size_t)w >= sizeof(key) - len)
            break;
        len += (size_t)w;
    }
    struct target *free_slot = NULL;
    for (size_t i = 0; i < MAINT_TARGETS; i++) {
        struct target *t = &m->targets[i];
        if (t->ch && strcmp(t->key, key) == 0) {
            t->used = true;
            return t;
        }
        if (!t->ch && !free_slot)
            free_slot = t;
    }
    if (!free_slot || n == 0)
        return NULL;
    struct target *t = free_slot;
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < n && i < CACHE_MAX_URLS; i++) {
        copy_str(t->urls[i], CACHE_MAX_URL, urls[i]);
        t->eps[t->n++] = t->urls[i];
    }
    char err[256];
    struct grpc_channel_config cc = {.endpoints = t->eps,
                                     .n_endpoints = t->n,
                                     .tls = m->cfg.tls,
                                     .connect_timeout_ms = MAINT_CALL_TIMEOUT_MS,
                                     .window_size = 256 * 1024};
    t->ch = grpc_channel_new(&cc, err, sizeof(err));
    if (!t->ch) {
        log_msg(LOG_WARN, "maint: channel to %s: %s", t->eps[0], err);
        return NULL;
    }
    copy_str(t->key, sizeof(t->key), key);
    t->used = true;
    return t;
}

static void targets_sweep(struct maint *m)
{
    for (size_t i = 0; i < MAINT_TARGETS; i++) {
        if (m->targets[i].ch && !m->targets[i].used) {
            grpc_channel_free(m->targets[i].ch);
            m->targets[i].ch = NULL;
        }
        m->targets[i].used = false;
    }
}

/* ---- observation -------------------------------------------------------------------------- */

struct observed {
    struct maint_plan_member pm[MAINT_PLAN_MAX_MEMBERS];
    struct target *via[MAINT_PLAN_MAX_MEMBERS];
    char name[MAINT_PLAN_MAX_MEMBERS][CACHE_MAX_NAME];
    size_t n;
};

static int64_t quota_of(struct maint *m, uint64_t id, int64_t status_quota, struct target *t)
{
    if (status_quota > 0)
        return status_quota; /* 3.6 says it in Status */
    int64_t now = clock_mono_ms();
    struct quota_entry *q = NULL, *free_slot = NULL;
    for (size_t i = 0; i < CACHE_MAX_MEMBERS; i++) {
        if (m->quotas[i].id == id)
            q = &m->quotas[i];
        else if (!m->quotas[i].id && !free_slot)
            free_slot = &m->quotas[i];
    }
    if (q && q->quota > 0 && now - q->at_ms < MAINT_QUOTA_REFRESH_MS)
        return q->quota;
    if (q && q->quota <= 0 && now - q->at_ms < (int64_t)m->cfg.defrag_settle_ms)
        return 0; /* failed a moment ago: do not hammer /metrics */
    if (!q)
        q = free_slot;
    if (!q || !t)
        return 0;
    const char *base = grpc_channel_endpoint(t->ch) ? grpc_channel_endpoint(t->ch) : t->eps[0];
    char *body = NULL, err[256] = "";
    size_t len = 0;
    int64_t quota = 0;
    int rc = httpsget(m->cfg.tls, base, "/metrics", HTTPSGET_MAX_METRICS, MAINT_METRICS_TIMEOUT_MS,
                      &body, &len, err, sizeof(err));
    if (rc == 0 && etcd_metrics_quota(body, len, &quota) != 0)
        (void)snprintf(err, sizeof(err), "no etcd_server_quota_backend_bytes in %s/metrics", base);
    if (err[0] && (!q->id || q->quota > 0))
        log_msg(LOG_WARN, "maint: quota of member %" PRIx64 ": %s", id, err);
    free(body);
    q->id = id;
    q->quota = err[0] ? 0 : quota;
    q->at_ms = now;
    return q->quota;
}

/* Status + a serializable read of every member (cluster table's members, or the
 * --cluster-endpoints matched by the answering member ID). */
static void observe(struct maint *m, const struct cache_snapshot *s, struct observed *o)
{
    memset(o, 0, sizeof(*o));
    const struct cache_cluster *cl = &s->cluster;
    for (size_t i = 0; i < cl->n_members && o->n < MAINT_PLAN_MAX_MEMBERS; i++) {
        o->pm[o->n].id = cl->members[i].id;
        o->pm[o->n].learner = cl->members[i].is_learner;
        copy_str(o->name[o->n], CACHE_MAX_NAME, cl->members[i].name);
        if (!m->cfg.n_cluster_endpoints && cl->members[i].started)
            o->via[o->n] = target_get(m, cl->members[i].client_urls, cl->members[i].n_client_urls);
        o->n++;
    }
    if (m->cfg.n_cluster_endpoints) {
        for (size_t e = 0; e < m->cfg.n_cluster_endpoints; e++) {
            char url[1][CACHE_MAX_URL];
            copy_str(url[0], CACHE_MAX_URL, m->cfg.cluster_endpoints[e]);
            struct target *t = target_get(m, url, 1);
            struct etcd_status es;
            struct grpc_status st;
            if (!t || etcd_status(t->ch, MAINT_CALL_TIMEOUT_MS, &es, &st) != GRPC_OK)
                continue;
            for (size_t i = 0; i < o->n; i++)
                if (o->pm[i].id == es.header.member_id && !o->via[i])
                    o->via[i] = t;
            etcd_status_free(&es);
        }
    }
    for (size_t i = 0; i < o->n && !stopping(m); i++) {
        struct maint_plan_member *pm = &o->pm[i];
        struct target *t = o->via[i];
        struct etcd_status es;
        struct grpc_status st;
        if (!t || etcd_status(t->ch, MAINT_CALL_TIMEOUT_MS, &es, &st) != GRPC_OK)
            continue;
        pm->answered = es.header.member_id == pm->id;
        pm->leader = es.leader;
        pm->db_size = es.db_size;
        pm->db_in_use = es.db_size_in_use;
        pm->raft_index = es.raft_index;
        pm->applied_index = es.raft_applied_index;
        pm->revision = es.header.revision;
        pm->learner = es.is_learner;
        int64_t sq = es.db_size_quota;
        etcd_status_free(&es);
        pm->read_ok = etcd_range_serializable(t->ch, "health", MAINT_CALL_TIMEOUT_MS, NULL, NULL,
                                              &st) == GRPC_OK;
        pm->quota = quota_of(m, pm->id, sq, t);
    }
}

/* ---- steps -------------------------------------------------------------------------------- */

static void log_step(enum log_level lvl, const char *msg, const char *reason, uint64_t id,
                     const char *error)
{
    cJSON *f = cJSON_CreateObject();
    char h[17];
    if (id)
        cJSON_AddStringToObject(f, "member", etcd_id_hex(id, h));
    if (reason && reason[0])
        cJSON_AddStringToObject(f, "reason", reason);
    if (error && error[0])
        cJSON_AddStringToObject(f, "error", error);
    log_event(lvl, msg, f);
}

static void do_defrag(struct maint *m, struct observed *o, size_t i, const char *reason)
{
    struct maint_plan_member *pm = &o->pm[i];
    struct target *t = o->via[i];
    log_step(LOG_INFO, "maint: defragmenting", reason, pm->id, NULL);
    double t0 = wall_seconds();
    struct grpc_status st;
    int rc = etcd_defragment(t->ch, (int)m->cfg.defrag_timeout_ms, &st);
    double took = wall_seconds() - t0;
    struct etcd_status es;
    int64_t after = pm->db_size;
    struct grpc_status st2;
    if (rc == GRPC_OK && etcd_status(t->ch, MAINT_CALL_TIMEOUT_MS, &es, &st2) == GRPC_OK) {
        after = es.db_size;
        etcd_status_free(&es);
    }
    pthread_mutex_lock(&m->mu);
    if (rc == GRPC_OK) {
        m->defrag_total++;
        m->defrag_last_ts = wall_seconds();
        m->defrag_last_duration = took;
        if (after < pm->db_size)
            m->freed_bytes += (uint64_t)(pm->db_size - after);
    } else {
        m->defrag_failures++;
    }
    pthread_mutex_unlock(&m->mu);
    cJSON *f = cJSON_CreateObject();
    char h[17];
    cJSON_AddStringToObject(f, "member", etcd_id_hex(pm->id, h));
    cJSON_AddNumberToObject(f, "seconds", took);
    cJSON_AddNumberToObject(f, "db_before", (double)pm->db_size);
    if (rc == GRPC_OK) {
        cJSON_AddNumberToObject(f, "db_after", (double)after);
        log_event(LOG_INFO, "maint: defragmented", f);
    } else {
        cJSON_AddStringToObject(f, "error", st.message);
        cJSON_AddStringToObject(f, "code", grpc_code_name(st.code));
        log_event(LOG_WARN, "maint: defragment failed", f);
    }
}

static size_t leader_index(const struct observed *o, uint64_t self)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->pm[i].id == self)
            return i;
    return 0;
}

/* One planning round. Returns the delay before the next one. */
static int64_t defrag_round(struct maint *m, const struct cache_snapshot *s, bool nospace)
{
    struct observed o;
    observe(m, s, &o);
    uint64_t self = s->local.status.member_id;
    bool done[MAINT_PLAN_MAX_MEMBERS] = {false};
    for (size_t i = 0; i < o.n; i++)
        for (size_t j = 0; j < m->n_nospace_done; j++)
            done[i] |= m->nospace_done[j] == o.pm[i].id;
    struct maint_plan_facts f = {.self = self,
                                 .nospace = nospace,
                                 .compacted = m->compacted_rev,
                                 .members = o.pm,
                                 .done = done,
                                 .n = o.n};
    struct maint_plan_decision d;
    maint_plan_next(&f, &m->cfg.plan, &d);
    int64_t settle = (int64_t)m->cfg.defrag_settle_ms;
    int64_t later = nospace ? settle : (int64_t)m->cfg.defrag_interval_ms;
    bool changed = strcmp(m->state.last_step, d.reason) != 0;
    copy_str(m->state.last_step, sizeof(m->state.last_step), d.reason);
    if (d.step != MAINT_HOLD)
        m->state.nospace_reason[0] = '\0';
    struct grpc_status st = {.code = GRPC_UNAVAILABLE, .message = "no channel to the member"};
    switch (d.step) {
    case MAINT_IDLE:
        if (changed && strcmp(d.reason, "nothing due") != 0 && nospace)
            log_step(LOG_INFO, "maint: idle", d.reason, 0, NULL);
        return later;
    case MAINT_SKIP:
        count_skip(m, d.label);
        log_step(LOG_WARN, "maint: maintenance skipped", d.reason, 0, NULL);
        return settle;
    case MAINT_HOLD:
        if (strcmp(m->state.nospace_reason, d.reason) != 0) {
            log_step(LOG_WARN, "maint: NOSPACE alarm left in place", d.reason, 0, NULL);
            count_skip(m, d.label);
        }
        copy_str(m->state.nospace_reason, sizeof(m->state.nospace_reason), d.reason);
        return settle;
    case MAINT_COMPACT: {
        struct target *t = o.via[leader_index(&o, self)];
        int rc = t ? etcd_compact(t->ch, d.revision, true, (int)m->cfg.defrag_timeout_ms, &st)
                   : GRPC_UNAVAILABLE;
        /* already compacted to that revision: as good as done */
        bool already = rc == GRPC_OUT_OF_RANGE && strstr(st.message, "compacted");
        bool ok = rc == GRPC_OK || already;
        if (ok) {
            m->compacted_rev = d.revision;
            m->n_nospace_done = 0; /* newly freed pages on every member: defragment them again */
        }
        if (!already)
            log_step(ok ? LOG_INFO : LOG_WARN, ok ? "maint: compacted" : "maint: compact failed",
                     d.reason, 0, ok ? NULL : st.message);
        return ok ? 0 : settle;
    }
    case MAINT_DEFRAG:
        do_defrag(m, &o, d.target, d.reason);
        if (nospace && m->n_nospace_done < CACHE_MAX_MEMBERS)
            m->nospace_done[m->n_nospace_done++] = o.pm[d.target].id;
        return settle;
    case MAINT_MOVE_LEADER: {
        struct target *t = o.via[leader_index(&o, self)];
        int rc = t ? etcd_move_leader(t->ch, o.pm[d.target].id, MAINT_CALL_TIMEOUT_MS * 5, &st)
                   : GRPC_UNAVAILABLE;
        log_step(rc == GRPC_OK ? LOG_INFO : LOG_WARN,
                 rc == GRPC_OK ? "maint: leadership moved" : "maint: move leader failed", d.reason,
                 o.pm[d.target].id, rc == GRPC_OK ? NULL : st.message);
        if (rc != GRPC_OK)
            count_skip(m, "move_leader_failed");
        return settle;
    }
    case MAINT_DISARM: {
        struct target *t = o.via[leader_index(&o, self)];
        int rc = t ? etcd_alarm_deactivate(t->ch, 0, ETCD_ALARM_NOSPACE, MAINT_CALL_TIMEOUT_MS, &st)
                   : GRPC_UNAVAILABLE;
        log_step(rc == GRPC_OK ? LOG_INFO : LOG_WARN,
                 rc == GRPC_OK ? "maint: NOSPACE alarm disarmed" : "maint: disarm failed", d.reason,
                 0, rc == GRPC_OK ? NULL : st.message);
        /* Disarm each member's alarm: etcd 3.4 keeps one per member that raised it. */
        for (size_t i = 0; rc == GRPC_OK && i < s->local.n_alarms; i++)
            if (s->local.alarms[i].type == ETCD_ALARM_NOSPACE && t)
                (void)etcd_alarm_deactivate(t->ch, s->local.alarms[i].member_id, ETCD_ALARM_NOSPACE,
                                            MAINT_CALL_TIMEOUT_MS, &st);
        return settle;
    }
    }
    return later;
}

/* ---- HashKV ------------------------------------------------------------------------------- */

static void hashkv_mark_local(struct maint *m, const struct cache_snapshot *s,
                              enum maint_hash_verdict v, const struct maint_plan_hash *h,
                              const bool *named, size_t n, int64_t rev);

static void hashkv_round(struct maint *m, const struct cache_snapshot *s)
{
    struct observed o;
    observe(m, s, &o);
    int64_t rev = maint_plan_hashkv_revision(o.pm, o.n);
    if (rev <= 0)
        return;
    /* When every member stands at rev, ask for "the current revision" (0): right after a
     * compaction to rev, HashKV(rev) is refused as compacted, HashKV(0) is not. Answers whose
     * header shows another revision (a write came in between) are not compared. */
    bool same = true;
    for (size_t i = 0; i < o.n; i++)
        same &= !o.pm[i].answered || o.pm[i].revision == rev;
    struct maint_plan_hash h[MAINT_PLAN_MAX_MEMBERS];
    memset(h, 0, sizeof(h));
    for (size_t i = 0; i < o.n && !stopping(m); i++) {
        h[i].id = o.pm[i].id;
        struct grpc_status st;
        if (!o.pm[i].answered || !o.via[i])
            continue;
        struct etcd_header hdr;
        h[i].ok = etcd_hashkv(o.via[i]->ch, same ? 0 : rev, MAINT_HASHKV_TIMEOUT_MS, &hdr,
                              &h[i].hash, &h[i].compact_revision, &st) == GRPC_OK;
        if (h[i].ok && same && hdr.revision != rev) {
            h[i].ok = false;
            (void)snprintf(st.message, sizeof(st.message), "moved on to revision %" PRId64,
                           hdr.revision);
        }
        if (!h[i].ok)
            log_msg(LOG_WARN, "maint: hashkv of %" PRIx64 " at %" PRId64 ": %s", h[i].id, rev,
                    st.message);
    }
    bool named[MAINT_PLAN_MAX_MEMBERS];
    enum maint_hash_verdict v = maint_plan_hash_compare(h, o.n, o.n, named);
    struct cache_maint *sm = &m->state;
    copy_str(sm->hashkv_verdict, sizeof(sm->hashkv_verdict), maint_plan_hash_verdict_name(v));
    sm->hashkv_revision = rev;
    sm->hashkv_at_ms = clock_mono_ms();
    sm->n_members = 0;
    cJSON *f = cJSON_CreateObject();
    cJSON *hashes = cJSON_AddObjectToObject(f, "hashes");
    cJSON *div = cJSON_AddArrayToObject(f, "divergent");
    for (size_t i = 0; i < o.n && i < CACHE_MAX_MEMBERS; i++) {
        struct cache_maint_member *cm = &sm->members[sm->n_members++];
        cm->id = h[i].id;
        cm->hash_ok = h[i].ok;
        cm->hash = h[i].hash;
        cm->compact_revision = h[i].compact_revision;
        cm->divergent = named[i];
        cm->quota = o.pm[i].quota;
        char id[17];
        etcd_id_hex(h[i].id, id);
        if (h[i].ok)
            cJSON_AddNumberToObject(hashes, id, (double)h[i].hash);
        if (named[i])
            cJSON_AddItemToArray(div, cJSON_CreateString(id));
    }
    cJSON_AddNumberToObject(f, "revision", (double)rev);
    cJSON_AddStringToObject(f, "verdict", sm->hashkv_verdict);
    bool bad = v == MAINT_HASH_DIVERGENT || v == MAINT_HASH_INCONSISTENT;
    log_event(bad ? LOG_ERROR : LOG_INFO, bad ? "maint: hashkv mismatch" : "maint: hashkv check",
              f);
    hashkv_mark_local(m, s, v, h, named, o.n, rev);
}

/* Carry out a's meaning for the local member's divergent marker: written when a majority named
 * it at one revision R, removed when a check found it consistent with the majority; LEAVE
 * changes nothing. On the maint thread: file I/O never runs on the event loop. `source` says
 * whose check it was, for the log line. */
static void marker_apply(struct maint *m, const struct cache_snapshot *s,
                         enum maint_marker_action a, int64_t rev, uint32_t hash,
                         uint32_t majority_hash, const char *source)
{
    const struct cache_local *l = &s->local;
    const char *dir = m->cfg.divergent_marker;
    struct divergent_marker mk = {0};
    int rc;

    if (!dir || !dir[0] || !l->have_status || !l->status.member_id || !l->status.cluster_id)
        return;
    switch (a) {
    case MAINT_MARKER_WRITE:
        mk.member_id = l->status.member_id;
        mk.cluster_id = l->status.cluster_id;
        mk.revision = rev;
        mk.time = (int64_t)wall_seconds();
        mk.hash = hash;
        mk.majority_hash = majority_hash;
        rc = divergent_write(dir, &mk);
        if (rc != 0)
            log_msg(LOG_ERROR, "maint: writing the divergent marker %s: %s", dir, strerror(-rc));
        else
            log_msg(LOG_WARN,
                    "maint: the local member %" PRIx64 " is divergent at revision %" PRId64
                    " (hash %" PRIu32 ", majority %" PRIu32 ", %s): marker %s written; "
                    "restarting the pod resets it",
                    mk.member_id, rev, mk.hash, mk.majority_hash, source, dir);
        return;
    case MAINT_MARKER_REMOVE:
        if (divergent_read(dir, &mk) == -ENOENT)
            return;
        rc = divergent_remove(dir);
        if (rc != 0)
            log_msg(LOG_ERROR, "maint: removing the divergent marker %s: %s", dir, strerror(-rc));
        else
            log_msg(LOG_INFO,
                    "maint: the local member is consistent again (%s): divergent "
                    "marker removed",
                    source);
        return;
    case MAINT_MARKER_LEAVE:
        return;
    }
}

/* The coordinator's own member, after its own check. */
static void hashkv_mark_local(struct maint *m, const struct cache_snapshot *s,
                              enum maint_hash_verdict v, const struct maint_plan_hash *h,
                              const bool *named, size_t n, int64_t rev)
{
    uint64_t self = s->local.have_status ? s->local.status.member_id : 0;
    uint32_t maj = 0, own = 0;
    enum maint_marker_action a = maint_plan_marker(h, n, v, named, self, &maj);
    for (size_t i = 0; i < n; i++)
        if (h[i].id == self)
            own = h[i].hash;
    marker_apply(m, s, a, rev, own, maj, "our own check");
}

/* ---- a follower learns the leader's agent's verdict ------------------------------------ */

/* GET /hashkv of one agent; 0 with *v parsed, or negative with err filled. */
static int peer_fetch(struct maint *m, const char *base, struct maint_peer_verdict *v, char *err,
                      size_t err_len)
{
    char *body = NULL;
    size_t len = 0;
    int rc = httpsget(m->cfg.tls, base, "/hashkv", MAINT_PEER_MAX_BYTES, MAINT_CALL_TIMEOUT_MS,
                      &body, &len, err, err_len);
    if (rc == 0 && maint_peer_parse(body, len, v) < 0) {
        (void)snprintf(err, err_len, "%s/hashkv: not a verdict", base);
        rc = -EPROTO;
    }
    free(body);
    return rc;
}

static void peer_note(struct maint *m, const char *err)
{
    if (strcmp(m->peer_error, err) != 0 && err[0])
        log_msg(LOG_WARN, "maint: cannot learn the leader's HashKV verdict: %s", err);
    copy_str(m->peer_error, sizeof(m->peer_error), err);
}

/* A follower (with a data dir to mark): ask the leader's agent, act once per check. */
static void peer_round(struct maint *m, const struct cache_snapshot *s)
{
    const struct cache_local *l = &s->local;
    uint64_t leader = l->status.leader, self = l->status.member_id;
    char err[256] = "", url[CACHE_MAX_URL + 16];
    struct maint_peer_verdict v;
    bool got = false;

    if (m->cfg.n_peer_agents) {
        for (size_t i = 0; i < m->cfg.n_peer_agents && !got && !stopping(m); i++) {
            char e[256] = "";
            got = peer_fetch(m, m->cfg.peer_agents[i], &v, e, sizeof(e)) == 0 && v.coordinator &&
                  v.member_id == leader;
            if (e[0])
                copy_str(err, sizeof(err), e);
        }
        if (!got && !err[0])
            (void)snprintf(err, sizeof(err), "no --peer-agents entry is the leader's agent");
    } else if (m->cfg.agent_scheme && m->cfg.agent_port) {
        const struct cache_member *lm = NULL;
        for (size_t i = 0; i < s->cluster.n_members && i < CACHE_MAX_MEMBERS; i++)
            if (s->cluster.members[i].id == leader && s->cluster.members[i].n_client_urls)
                lm = &s->cluster.members[i];
        if (!lm)
            (void)snprintf(err, sizeof(err), "the leader %" PRIx64 " has no client URL", leader);
        else if (maint_peer_url(lm->client_urls[0], m->cfg.agent_scheme, m->cfg.agent_port, url,
                                sizeof(url)) < 0)
            (void)snprintf(err, sizeof(err), "no agent URL from %.200s", lm->client_urls[0]);
        else
            got = peer_fetch(m, url, &v, err, sizeof(err)) == 0;
    }
    if (!got) {
        peer_note(m, err);
        return;
    }
    uint32_t maj = 0, own = 0;
    const char *why = "";
    enum maint_marker_action a = maint_peer_decide(&v, self, l->status.cluster_id, leader,
                                                   s->cluster.n_members, &maj, &own, &why);
    if (a == MAINT_MARKER_LEAVE) {
        /* no evidence is normal; an answer we may not use says something is misconfigured */
        bool refused =
            strcmp(why, "not the leader's agent") == 0 || strcmp(why, "another cluster") == 0;
        peer_note(m, refused ? why : "");
        return;
    }
    peer_note(m, "");
    /* Act once per outcome: the same revision can be checked again with another outcome (a
     * member restarted with changed bytes and no write in between). */
    if (v.revision == m->peer_rev && v.member_id == m->peer_from && a == m->peer_action &&
        own == m->peer_hash)
        return;
    m->peer_rev = v.revision;
    m->peer_from = v.member_id;
    m->peer_action = a;
    m->peer_hash = own;
    char source[64];
    char h[17];
    (void)snprintf(source, sizeof(source), "the check of leader %s", etcd_id_hex(v.member_id, h));
    marker_apply(m, s, a, v.revision, own, maj, source);
}

/* ---- the local member: a defrag the coordinator runs on it ----------------------------- */

static void watch_local(struct maint *m, const struct cache_snapshot *s, int64_t now)
{
    const struct cache_local *l = &s->local;
    struct cache_maint *sm = &m->state;
    bool nospace = false;
    for (size_t i = 0; i < l->n_alarms; i++)
        nospace |= l->alarms[i].type == ETCD_ALARM_NOSPACE;
    if (l->status_ok && l->range_ok) {
        struct maint_plan_member me = {
            .answered = true, .db_size = l->status.db_size, .db_in_use = l->status.db_size_in_use};
        m->local_due = !l->status.is_learner && (m->cfg.defrag_interval_ms || nospace) &&
                       maint_plan_due(&me, &m->cfg.plan, nospace);
        if (sm->defragmenting)
            log_msg(LOG_INFO, "maint: the local member answers reads again (defrag over)");
        sm->defragmenting = false;
        return;
    }
    /* Reads stall while Status answers (or nothing answers at all, once it began), on a
     * follower that was due: the coordinator's Defragment is running here. */
    bool stalled = l->probed_at_ms && !l->range_ok &&
                   (strstr(l->range_error, "DEADLINE") || strstr(l->range_error, "deadline"));
    bool follower = l->have_status && l->status.leader != l->status.member_id;
    if (!sm->defragmenting && stalled && follower && m->local_due) {
        sm->defragmenting = true;
        sm->defrag_since_ms = now;
        log_msg(LOG_INFO, "maint: the local member is being defragmented (reads stall)");
    } else if (sm->defragmenting && now - sm->defrag_since_ms > (int64_t)m->cfg.defrag_timeout_ms) {
        sm->defragmenting = false;
        m->local_due = false;
        log_msg(LOG_WARN, "maint: the local member has not answered reads for the whole "
                          "--defrag-timeout: no longer treated as defragmenting");
    }
}

static void *maint_main(void *arg)
{
    struct maint *m = arg;
    int64_t next_defrag = m->next_defrag_ms;
    while (!wait_ms(m, MAINT_TICK_MS)) {
        const struct cache_snapshot *s = cache_acquire(m->cfg.cache);
        int64_t now = clock_mono_ms();
        watch_local(m, s, now);
        const struct cache_local *l = &s->local;
        bool coordinator = l->status_ok && !l->status.is_learner && l->status.leader != 0 &&
                           l->status.leader == l->status.member_id;
        bool nospace = false;
        for (size_t i = 0; l->alarms_ok && i < l->n_alarms; i++)
            nospace |= l->alarms[i].type == ETCD_ALARM_NOSPACE;
        if (!nospace || !coordinator) {
            m->state.nospace_reason[0] = '\0';
            m->n_nospace_done = 0;
        }
        m->state.coordinator = coordinator;
        if (!coordinator)
            m->state.last_step[0] = '\0';
        for (size_t i = 0; i < CACHE_MAX_MEMBERS; i++)
            if (l->have_status && m->quotas[i].id == l->status.member_id)
                m->state.quota = m->quotas[i].quota;
        if (l->have_status && l->status.db_size_quota > 0)
            m->state.quota = l->status.db_size_quota;
        if (!m->state.quota && l->have_status && !coordinator) {
            /* every agent shows its own member's quota: read it once in a while */
            for (size_t i = 0; i < s->cluster.n_members; i++) {
                const struct cache_member *cm = &s->cluster.members[i];
                if (cm->id == l->status.member_id && cm->n_client_urls)
                    m->state.quota =
                        quota_of(m, cm->id, 0, target_get(m, cm->client_urls, cm->n_client_urls));
            }
        }
        if (coordinator && s->cluster.ok &&
            (nospace || (m->cfg.defrag_interval_ms && now >= next_defrag)))
            next_defrag = clock_mono_ms() + defrag_round(m, s, nospace);
        else if (!coordinator)
            next_defrag = now > next_defrag ? now : next_defrag;
        if (coordinator && s->cluster.ok && m->cfg.hashkv_interval_ms && now >= m->next_hashkv_ms &&
            !stopping(m)) {
            hashkv_round(m, s);
            m->next_hashkv_ms = clock_mono_ms() + (int64_t)m->cfg.hashkv_interval_ms;
        }
        if (!coordinator && m->cfg.hashkv_interval_ms && m->cfg.divergent_marker && l->status_ok &&
            l->status.leader && !l->status.is_learner && now >= m->next_peer_ms && !stopping(m)) {
            peer_round(m, s);
            m->next_peer_ms = clock_mono_ms() + (int64_t)m->cfg.hashkv_interval_ms;
        }
        targets_sweep(m);
        cache_release(m->cfg.cache, s);
        if (cache_publish_maint(m->cfg.cache, &m->state) < 0)
            log_msg(LOG_WARN, "maint: out of memory publishing the maintenance state");
    }
    return NULL;
}

int maint_start(struct maint *m)
{
    if (cache_publish_maint(m->cfg.cache, &m->state) < 0)
        return -ENOMEM;
    int rc = pthread_create(&m->thread, NULL, maint_main, m);
    if (rc)
        return -rc;
    m->started = true;
    return 0;
}

bool maint_free(struct maint *m)
{
    if (!m)
        return true;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (m->started) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += MAINT_STOP_GRACE_MS / 1000;
        if (pthread_timedjoin_np(m->thread, NULL, &ts) != 0) {
            log_msg(LOG_WARN, "maint: a maintenance call is still running; not waiting for it");
            pthread_detach(m->thread);
            return false;
        }
    }
    for (size_t i = 0; i < MAINT_TARGETS; i++)
        grpc_channel_free(m->targets[i].ch);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
    return true;
}

/* ---- GET /hashkv -------------------------------------------------------------------------- */

static void route_hashkv(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct maint *m = arg;
    const struct cache_snapshot *s = cache_acquire(m->cfg.cache);
    char *text = NULL;
    size_t len = 0;
    int rc = maint_peer_render(s, clock_mono_ms(), &text, &len);
    cache_release(m->cfg.cache, s);
    if (rc == -EAGAIN)
        (void)http_response_error(resp, 503, "the local member has not answered yet");
    else if (rc < 0 || http_response_set_body(resp, 200, "application/json", text, len) < 0)
        (void)http_response_error(resp, 500, "out of memory");
    cJSON_free(text);
    (void)http_response_add_header(resp, "cache-control", "no-store");
}

int maint_add_routes(struct maint *m, struct routes *r)
{
    m->route =
        (struct route){.path = "/hashkv", .methods = "GET, HEAD", .fn = route_hashkv, .arg = m};
    return routes_add(r, &m->route);
}

/* ---- metrics ------------------------------------------------------------------------------ */

void maint_metrics(void *arg, struct metrics_writer *w)
{
    struct maint *m = arg;
    pthread_mutex_lock(&m->mu);
    double last_ts = m->defrag_last_ts, last_dur = m->defrag_last_duration;
    uint64_t total = m->defrag_total, failures = m->defrag_failures, freed = m->freed_bytes;
    struct skip_count skips[MAINT_MAX_SKIP_REASONS];
    memcpy(skips, m->skips, sizeof(skips));
    pthread_mutex_unlock(&m->mu);
    const struct cache_snapshot *s = cache_acquire(m->cfg.cache);
    const struct cache_maint *sm = &s->maint;
    const struct cache_local *l = &s->local;

    metrics_family(w, "etcd_agent_defrag_last_timestamp_seconds", "gauge",
                   "Unix time of the last successful defragmentation this agent ran (0: none).");
    metrics_sample(w, "etcd_agent_defrag_last_timestamp_seconds", NULL, last_ts);
    metrics_family(w, "etcd_agent_defrag_duration_seconds", "gauge",
                   "Duration of the last successful defragmentation this agent ran.");
    metrics_sample(w, "etcd_agent_defrag_duration_seconds", NULL, last_dur);
    metrics_family(w, "etcd_agent_defrag_total", "counter",
                   "Successful defragmentations this agent ran (as coordinator).");
    metrics_sample(w, "etcd_agent_defrag_total", NULL, (double)total);
    metrics_family(w, "etcd_agent_defrag_failures_total", "counter",
                   "Defragment calls of this agent that failed.");
    metrics_sample(w, "etcd_agent_defrag_failures_total", NULL, (double)failures);
    metrics_family(w, "etcd_agent_defrag_freed_bytes_total", "counter",
                   "Bytes of backend database freed by the defragmentations this agent ran.");
    metrics_sample(w, "etcd_agent_defrag_freed_bytes_total", NULL, (double)freed);
    metrics_family(w, "etcd_agent_defrag_skipped_total", "counter",
                   "Maintenance steps that were due but not taken, by reason.");
    for (size_t i = 0; i < MAINT_MAX_SKIP_REASONS && skips[i].reason; i++) {
        const char *labels[] = {"reason", skips[i].reason, NULL};
        metrics_sample(w, "etcd_agent_defrag_skipped_total", labels, (double)skips[i].n);
    }
    metrics_family(w, "etcd_agent_defragmenting", "gauge",
                   "1 while the local member is being defragmented by the coordinator.");
    metrics_sample(w, "etcd_agent_defragmenting", NULL, sm->defragmenting ? 1 : 0);
    metrics_family(w, "etcd_agent_maintenance_coordinator", "gauge",
                   "1 if this agent coordinates maintenance (its member is the leader).");
    metrics_sample(w, "etcd_agent_maintenance_coordinator", NULL, sm->coordinator ? 1 : 0);
    metrics_family(w, "etcd_agent_nospace_held", "gauge",
                   "1 if a NOSPACE alarm is left in place because space cannot be freed "
                   "(/status says why).");
    metrics_sample(w, "etcd_agent_nospace_held", NULL, sm->nospace_reason[0] ? 1 : 0);
    metrics_family(w, "etcd_agent_quota_bytes", "gauge",
                   "The local member's backend quota (etcd_server_quota_backend_bytes, or "
                   "Status dbSizeQuota on 3.6).");
    if (sm->quota > 0)
        metrics_sample(w, "etcd_agent_quota_bytes", NULL, (double)sm->quota);
    metrics_family(w, "etcd_agent_db_quota_used_percent", "gauge",
                   "The local member's db size as a percentage of its quota.");
    if (sm->quota > 0 && l->have_status)
        metrics_sample(w, "etcd_agent_db_quota_used_percent", NULL,
                       (double)l->status.db_size * 100.0 / (double)sm->quota);
    metrics_family(w, "etcd_agent_hashkv_mismatch", "gauge",
                   "1 if the last HashKV check named this member divergent (coordinator only).");
    for (size_t i = 0; i < sm->n_members; i++) {
        char id[17];
        const char *labels[] = {"member", etcd_id_hex(sm->members[i].id, id), NULL};
        metrics_sample(w, "etcd_agent_hashkv_mismatch", labels, sm->members[i].divergent ? 1 : 0);
    }
    metrics_family(w, "etcd_agent_hashkv_inconsistent", "gauge",
                   "1 if the last HashKV check found no majority hash (coordinator only).");
    metrics_sample(w, "etcd_agent_hashkv_inconsistent", NULL,
                   strcmp(sm->hashkv_verdict, "inconsistent cluster") == 0 ? 1 : 0);
    cache_release(m->cfg.cache, s);
}
