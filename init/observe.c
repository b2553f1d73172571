/* observe.c - gathers reset-member's facts: data dir verdict (datadir.c), the member list
 * through the first endpoint that answers, each other member's health probed concurrently.
 *
 * Nothing here writes or changes membership; the decision is decide.c's, acting act.c's. */
#include "observe.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounds.h"
#include "clock.h"

static void note(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A reason for the log line; cut short if it must be. */
static void note(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* What is left of the budget for one call, capped at OBSERVE_CALL_TIMEOUT_MS. */
static int call_budget(const struct observe *o)
{
    long long left = o->deadline_ms - clock_mono_ms();

    if (left > OBSERVE_CALL_TIMEOUT_MS)
        left = OBSERVE_CALL_TIMEOUT_MS;
    return left < OBSERVE_MIN_CALL_MS ? OBSERVE_MIN_CALL_MS : (int)left;
}

void observe_data(const struct observe_config *c, struct observe *o)
{
    o->data_rc = datadir_inspect(c->data_dir, &o->data);
    o->locked =
        o->data_rc == 0 && o->data.verdict != DATADIR_EMPTY ? datadir_wal_locked(c->data_dir) : 0;
    /* bounded, strict; anything but a well-formed marker is no marker (and logged) */
    if (c->divergent_marker && c->divergent_marker[0])
        o->divergent_rc = divergent_read(c->divergent_marker, &o->divergent);
    else
        o->divergent_rc = -ENOENT;
}

static struct grpc_channel *channel_for(struct tls_ctx *tls, const char *const *eps, size_t n,
                                        int connect_ms, char *err, size_t err_len)
{
    struct grpc_channel_config cfg = {
        .endpoints = eps, .n_endpoints = n, .tls = tls, .connect_timeout_ms = connect_ms};
    return grpc_channel_new(&cfg, err, err_len);
}

static bool has_url(char *const *urls, size_t n, const char *url)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(urls[i], url) == 0)
            return true;
    return false;
}

int observe_cluster(const struct observe_config *c, struct observe *o)
{
    char err[256];

    o->deadline_ms = clock_mono_ms() + c->timeout_ms;
    for (int round = 0; round < OBSERVE_LIST_ROUNDS && !o->reachable; round++) {
        if (round > 0) {
            /* only a server that answered with an error is worth asking again */
            if (!o->server_answered_error ||
                clock_mono_ms() + OBSERVE_ROUND_PAUSE_MS >= o->deadline_ms)
                break;
            struct timespec ts = {0, OBSERVE_ROUND_PAUSE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        for (size_t i = 0; i < c->n_endpoints && !o->reachable; i++) {
            struct grpc_status st;
            struct grpc_channel *ch = channel_for(c->tls, &c->endpoints[i], 1,
                                                  OBSERVE_CONNECT_TIMEOUT_MS, err, sizeof(err));
            if (!ch) {
                note(o->list_error, sizeof(o->list_error), "%s: %s", c->endpoints[i], err);
                return -EINVAL;
            }
            /* a learner or a member without quorum may refuse: go on to the next endpoint */
            if (etcd_member_list(ch, call_budget(o), &o->list, &st) == GRPC_OK) {
                o->reachable = true;
                o->ch = ch;
                break;
            }
            if (!st.transport)
                o->server_answered_error = true;
            note(o->list_error, sizeof(o->list_error), "%s: %s %s", c->endpoints[i],
                 grpc_code_name(st.code), st.message);
            grpc_channel_free(ch);
            if (clock_mono_ms() >= o->deadline_ms)
                break;
        }
    }
    if (!o->reachable)
        return 0;
    if (o->list.n_members > OBSERVE_MAX_MEMBERS) {
        o->too_many_members = true;
        return 0;
    }
    o->n = o->list.n_members;
    for (size_t i = 0; i < o->n; i++) {
        const struct etcd_member *m = &o->list.members[i];
        o->dm[i] = (struct decide_member){
            .id = m->id,
            .started = m->n_client_urls > 0,
            .peer_url_ours = has_url(m->peer_urls, m->n_peer_urls, c->peer_url),
            .learner = m->is_learner,
        };
    }
    return 0;
}

struct probe {
    const struct observe_config *c;
    const struct etcd_member *m;
    struct observe_health *h;
    int call_ms;
    pthread_t thread;
    bool running;
};

static void *probe_run(void *arg)
{
    struct probe *p = arg;
    struct grpc_status st;
    struct etcd_status s;
    struct grpc_channel *ch;
    char err[160];

    ch = channel_for(p->c->tls, (const char *const *)p->m->client_urls, p->m->n_client_urls,
                     p->call_ms < OBSERVE_CONNECT_TIMEOUT_MS ? p->call_ms
                                                             : OBSERVE_CONNECT_TIMEOUT_MS,
                     err, sizeof(err));
    if (!ch) {
        note(p->h->error, sizeof(p->h->error), "%s", err);
        return NULL;
    }
    if (etcd_status(ch, p->call_ms, &s, &st) != GRPC_OK) {
        note(p->h->error, sizeof(p->h->error), "status: %s %s", grpc_code_name(st.code),
             st.message);
        goto out;
    }
    p->h->leader = s.leader;
    etcd_status_free(&s);
    if (p->h->leader == 0) {
        note(p->h->error, sizeof(p->h->error), "no leader");
        goto out;
    }
    if (etcd_range_serializable(ch, OBSERVE_HEALTH_KEY, p->call_ms, NULL, NULL, &st) != GRPC_OK) {
        note(p->h->error, sizeof(p->h->error), "range: %s %s", grpc_code_name(st.code), st.message);
        goto out;
    }
    p->h->healthy = true;
out:
    grpc_channel_free(ch);
    return NULL;
}

void observe_health(const struct observe_config *c, struct observe *o)
{
    struct probe probes[OBSERVE_MAX_MEMBERS];
    int call_ms = call_budget(o) / 2; /* two calls each, run side by side */

    if (call_ms < OBSERVE_MIN_CALL_MS)
        call_ms = OBSERVE_MIN_CALL_MS;
    memset(probes, 0, sizeof(probes));
    for (size_t i = 0; i < o->n; i++) {
        struct probe *p = &probes[i];
        const struct etcd_member *m = &o->list.members[i];
        bool self = o->dm[i].peer_url_ours ||
                    (o->data.ids_known && o->data_rc == 0 && m->id == o->data.member_id);

        if (self) {
            note(o->health[i].error, sizeof(o->health[i].error), "self: not probed");
            continue;
        }
        if (!o->dm[i].started) {
            note(o->health[i].error, sizeof(o->health[i].error), "never started");
            continue;
        }
        o->health[i].probed = true;
        *p = (struct probe){.c = c, .m = m, .h = &o->health[i], .call_ms = call_ms};
        if (pthread_create(&p->thread, NULL, probe_run, p) == 0)
            p->running = true;
        else
            probe_run(p); /* no thread: probe inline, still bounded */
    }
    for (size_t i = 0; i < o->n; i++) {
        if (probes[i].running)
            pthread_join(probes[i].thread, NULL);
        o->dm[i].healthy = o->health[i].healthy;
    }
    o->health_probed = true;
}

void observe_facts(const struct observe *o, bool learner, struct decide_facts *f)
{
    memset(f, 0, sizeof(*f));
    if (o->data_rc != 0) {
        f->data = DECIDE_DATA_UNREADABLE;
    } else {
        switch (o->data.verdict) {
        case DATADIR_EMPTY:
            f->data = DECIDE_DATA_EMPTY;
            break;
        case DATADIR_VALID:
            f->data = DECIDE_DATA_VALID;
            break;
        case DATADIR_CORRUPT:
        default:
            f->data = DECIDE_DATA_CORRUPT;
            break;
        }
        f->ids_known = o->data.ids_known;
        f->data_member_id = o->data.member_id;
        f->data_cluster_id = o->data.cluster_id;
        f->torn_tail = o->data.wal_torn_tail;
    }
    /* a lock we cannot test is treated like a held one: etcd may be running */
    f->data_locked = o->locked != 0;
    f->reachable = o->reachable && !o->too_many_members;
    f->answered_error = !o->reachable && o->server_answered_error;
    f->cluster_id = o->list.header.cluster_id;
    f->members = o->dm;
    f->n_members = o->n;
    f->health_probed = o->health_probed;
    f->learner = learner;
    f->divergent_marker = o->divergent_rc == 0;
    f->divergent_member_id = o->divergent.member_id;
    f->divergent_cluster_id = o->divergent.cluster_id;
}

static cJSON *hex(uint64_t id)
{
    char buf[17];
    return cJSON_CreateString(etcd_id_hex(id, buf));
}

cJSON *observe_json(const struct observe *o)
{
    cJSON *j = cJSON_CreateObject(), *d, *c, *arr;

    if (!j)
        return NULL;
    d = cJSON_AddObjectToObject(j, "data");
    if (d) {
        cJSON_AddStringToObject(d, "verdict",
                                o->data_rc != 0                    ? "unreadable"
                                : o->data.verdict == DATADIR_EMPTY ? "empty"
                                : o->data.verdict == DATADIR_VALID ? "valid"
                                                                   : "corrupt");
        if (o->data.reason[0])
            cJSON_AddStringToObject(d, "reason", o->data.reason);
        if (o->data.ids_known) {
            cJSON_AddItemToObject(d, "member_id", hex(o->data.member_id));
            cJSON_AddItemToObject(d, "cluster_id", hex(o->data.cluster_id));
        }
        cJSON_AddBoolToObject(d, "torn_tail", o->data.wal_torn_tail);
        cJSON_AddNumberToObject(d, "locked", o->locked);
        cJSON_AddNumberToObject(d, "wal_files", (double)o->data.wal_files);
        cJSON_AddNumberToObject(d, "wal_last_index", (double)o->data.wal_last_index);
        cJSON_AddNumberToObject(d, "db_valid_metas", o->data.db_valid_metas);
        cJSON_AddNumberToObject(d, "inspect_us", (double)o->data.took_us);
        if (o->divergent_rc != -ENOENT) {
            cJSON *v = cJSON_AddObjectToObject(d, "divergent");
            if (v && o->divergent_rc == 0) {
                cJSON_AddItemToObject(v, "member_id", hex(o->divergent.member_id));
                cJSON_AddItemToObject(v, "cluster_id", hex(o->divergent.cluster_id));
                cJSON_AddNumberToObject(v, "revision", (double)o->divergent.revision);
                cJSON_AddNumberToObject(v, "hash", (double)o->divergent.hash);
                cJSON_AddNumberToObject(v, "majority_hash", (double)o->divergent.majority_hash);
                cJSON_AddNumberToObject(v, "time", (double)o->divergent.time);
            } else if (v) {
                cJSON_AddStringToObject(v, "error",
                                        o->divergent_rc == -EINVAL ? "unparsable marker: ignored"
                                                                   : strerror(-o->divergent_rc));
            }
        }
    }
    c = cJSON_AddObjectToObject(j, "cluster");
    if (!c)
        return j;
    cJSON_AddBoolToObject(c, "reachable", o->reachable);
    if (!o->reachable) {
        cJSON_AddStringToObject(c, "error", o->list_error);
        cJSON_AddBoolToObject(c, "server_answered_error", o->server_answered_error);
        return j;
    }
    if (o->ch && grpc_channel_endpoint(o->ch))
        cJSON_AddStringToObject(c, "endpoint", grpc_channel_endpoint(o->ch));
    cJSON_AddItemToObject(c, "cluster_id", hex(o->list.header.cluster_id));
    cJSON_AddBoolToObject(c, "too_many_members", o->too_many_members);
    cJSON_AddBoolToObject(c, "health_probed", o->health_probed);
    arr = cJSON_AddArrayToObject(c, "members");
    for (size_t i = 0; arr && i < o->n; i++) {
        const struct etcd_member *m = &o->list.members[i];
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddItemToObject(e, "id", hex(m->id));
        cJSON_AddStringToObject(e, "name", m->name ? m->name : "");
        cJSON_AddStringToObject(e, "peer_url", m->n_peer_urls ? m->peer_urls[0] : "");
        cJSON_AddBoolToObject(e, "started", o->dm[i].started);
        cJSON_AddBoolToObject(e, "ours", o->dm[i].peer_url_ours);
        cJSON_AddBoolToObject(e, "learner", o->dm[i].learner);
        if (o->health_probed) {
            cJSON_AddBoolToObject(e, "healthy", o->health[i].healthy);
            if (!o->health[i].healthy && o->health[i].error[0])
                cJSON_AddStringToObject(e, "health_error", o->health[i].error);
        }
        cJSON_AddItemToArray(arr, e);
    }
    return j;
}

void observe_free(struct observe *o)
{
    etcd_member_list_free(&o->list);
    if (o->ch)
        grpc_channel_free(o->ch);
    o->ch = NULL;
}
