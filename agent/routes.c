/* routes.c - dispatch by path and method, and the built-in routes that answer from the cache.
 *
 * Health verdicts are health.c's, the metrics text metrics.c's, the cache probe.c's; this file
 * turns them into HTTP answers (JSON via cJSON, or text) and counts every answer. Routes for
 * other features (snapshots) come in through routes_add(). */
#include "routes.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "bounds.h"
#include "clock.h"
#include "etcd.h"
#include "maint_table.h"
#include "metrics.h"

#define ROUTES_JSON "application/json"
#define ROUTES_TEXT "text/plain; charset=utf-8"
#define ROUTES_GET "GET, HEAD"
#define ROUTES_OTHER_LABEL "other" /* metrics path label for unknown paths */

/* The last JSON body of a probe route and the report it was rendered from. The body is a
 * function of the report, and only age_ms changes from one millisecond to the next: the body is
 * rendered (cJSON) when the verdict changes, and age_ms's digits are swapped in place between
 * renderings. Probes are answered from these bytes without a cJSON tree or a malloc. Handlers
 * run on the event-loop thread only: no lock. */
struct health_render {
    bool valid;
    struct health_report rep; /* rendered from; its age_ms is the one in body */
    size_t len;
    size_t age_off, age_len; /* where age_ms's digits are; age_len 0: "null" */
    char body[ROUTES_HEALTH_BODY];
};

enum { RENDER_READY, RENDER_LIVE, RENDER_COUNT };

struct routes {
    struct routes_config cfg;
    struct route table[ROUTES_MAX];
    size_t n;
    struct metrics_source metrics[METRICS_MAX_SOURCES];
    size_t n_metrics;
    struct health_render render[RENDER_COUNT];
};

/* ---- helpers ------------------------------------------------------------------------------ */

int routes_json(struct http_response *resp, int status, const struct cJSON *body)
{
    /* Most bodies fit the stack buffer: one exact-size copy instead of cJSON's growing
     * buffer. Larger ones (a big /members table) take cJSON's own path. */
    char stack[ROUTES_JSON_STACK];
    char *text = stack, *heap = NULL;
    if (!cJSON_PrintPreallocated((cJSON *)(uintptr_t)body, stack, sizeof(stack) - 1, false)) {
        heap = cJSON_PrintUnformatted(body);
        if (!heap)
            return -ENOMEM;
        text = heap;
    }
    size_t len = strlen(text);
    char *out = malloc(len + 2);
    if (!out) {
        cJSON_free(heap);
        return -ENOMEM;
    }
    memcpy(out, text, len);
    out[len] = '\n';
    out[len + 1] = '\0';
    cJSON_free(heap);
    free(resp->body);
    resp->status = status;
    resp->content_type = ROUTES_JSON;
    resp->body = out;
    resp->body_ref = NULL;
    resp->body_len = len + 1;
    return 0;
}

static void no_store(struct http_response *resp)
{
    /* Probe answers describe this instant; a cache in between must not replay them. */
    (void)http_response_add_header(resp, "cache-control", "no-store");
}

/* Integers as raw JSON numbers: exact beyond 2^53 and cheaper to print than cJSON's doubles
 * (which it formats, parses back and formats again). */
static cJSON *add_int(cJSON *o, const char *key, int64_t v)
{
    char n[24];
    (void)snprintf(n, sizeof(n), "%" PRId64, v);
    return cJSON_AddRawToObject(o, key, n);
}

static cJSON *add_uint(cJSON *o, const char *key, uint64_t v)
{
    char n[24];
    (void)snprintf(n, sizeof(n), "%" PRIu64, v);
    return cJSON_AddRawToObject(o, key, n);
}

static cJSON *add_hex(cJSON *o, const char *key, uint64_t id)
{
    char h[17];
    (void)etcd_id_hex(id, h);
    return cJSON_AddStringToObject(o, key, h);
}

/* A string, or null when empty. */
static cJSON *add_str_or_null(cJSON *o, const char *key, const char *v)
{
    return v && *v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key);
}

static cJSON *add_age(cJSON *o, const char *key, int64_t at_ms, int64_t now)
{
    return at_ms ? add_int(o, key, now - at_ms) : cJSON_AddNullToObject(o, key);
}

static cJSON *add_strings(cJSON *o, const char *key, const char (*v)[CACHE_MAX_URL], size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (size_t i = 0; a && i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return NULL;
        }
    }
    return a;
}

/* ---- health ------------------------------------------------------------------------------- */

/* Same verdict, reasons and age_ms null-ness: the bodies differ at most in age_ms's digits. */
static bool same_report(const struct health_report *a, const struct health_report *b)
{
    if (a->ok != b->ok || a->n_checks != b->n_checks || (a->age_ms < 0) != (b->age_ms < 0))
        return false;
    for (size_t i = 0; i < a->n_checks && i < HEALTH_MAX_CHECKS; i++)
        if (a->checks[i].ok != b->checks[i].ok || a->checks[i].name != b->checks[i].name ||
            strcmp(a->checks[i].reason, b->checks[i].reason) != 0)
            return false;
    return true;
}

/* A raw JSON value that marks where age_ms's digits go: a control character, which cJSON
 * escapes inside strings, so it appears in the output only there. */
static const char age_marker[] = "\x01";

/* {"status","checks":{name: "ok"|"failed: why"},"age_ms","member"}; NULL on ENOMEM. With
 * marker, age_ms (when known) is age_marker instead of the number. */
static cJSON *health_json(const struct routes *r, const struct health_report *rep, bool marker)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *checks = o && cJSON_AddStringToObject(o, "status", rep->ok ? "ok" : "failing")
                        ? cJSON_AddObjectToObject(o, "checks")
                        : NULL;
    bool ok = checks != NULL;
    for (size_t i = 0; ok && i < rep->n_checks; i++) {
        char v[CACHE_MAX_ERROR + 16];
        if (rep->checks[i].ok)
            (void)snprintf(v, sizeof(v), "ok");
        else
            (void)snprintf(v, sizeof(v), "failed: %s", rep->checks[i].reason);
        ok = cJSON_AddStringToObject(checks, rep->checks[i].name, v) != NULL;
    }
    if (ok && rep->age_ms < 0)
        ok = cJSON_AddNullToObject(o, "age_ms") != NULL;
    else if (ok)
        ok = (marker ? cJSON_AddRawToObject(o, "age_ms", age_marker)
                     : add_int(o, "age_ms", rep->age_ms)) != NULL;
    if (ok && r->cfg.name && *r->cfg.name)
        ok = cJSON_AddStringToObject(o, "member", r->cfg.name) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

#define ROUTES_AGE_DIGITS 20 /* an int64 */

/* Put age's digits into hr->body at age_off, moving what follows. */
static void set_age(struct health_render *hr, int64_t age)
{
    char d[ROUTES_AGE_DIGITS + 1];
    int n = snprintf(d, sizeof(d), "%" PRId64, age);
    if (n <= 0 || n > ROUTES_AGE_DIGITS)
        return; /* cannot happen for an int64 */
    size_t tail = hr->age_off + hr->age_len;
    memmove(hr->body + hr->age_off + (size_t)n, hr->body + tail, hr->len - tail);
    memcpy(hr->body + hr->age_off, d, (size_t)n);
    hr->len = hr->len - hr->age_len + (size_t)n;
    hr->age_len = (size_t)n;
    hr->rep.age_ms = age;
}

/* The JSON body for rep into hr (unformatted, newline-terminated). False if it does not fit
 * (very long reasons) or out of memory: then hr stays invalid. */
static bool health_render(const struct routes *r, const struct health_report *rep,
                          struct health_render *hr)
{
    hr->valid = false;
    cJSON *o = health_json(r, rep, true);
    /* room for the newline and the longest age */
    bool ok = o && cJSON_PrintPreallocated(o, hr->body,
                                           (int)sizeof(hr->body) - 2 - ROUTES_AGE_DIGITS, false);
    cJSON_Delete(o);
    if (!ok)
        return false;
    size_t len = strlen(hr->body);
    hr->body[len] = '\n';
    hr->len = len + 1;
    hr->rep = *rep;
    const char *m = rep->age_ms >= 0 ? memchr(hr->body, age_marker[0], len) : NULL;
    if (rep->age_ms >= 0 && !m)
        return false; /* cannot happen: the marker is in the tree */
    hr->age_off = m ? (size_t)(m - hr->body) : 0;
    hr->age_len = m ? 1 : 0;
    if (m)
        set_age(hr, rep->age_ms);
    hr->valid = true;
    return true;
}

static void health_answer(struct routes *r, const struct http_request *req,
                          struct http_response *resp, const struct health_report *rep,
                          const char *what, struct health_render *hr)
{
    int code = rep->ok ? 200 : 503;
    if (http_query_param(req, "verbose", NULL, 0)) {
        /* etcd's and Kubernetes' format: one "[+]name ok" / "[-]name failed: reason" line
         * per check, then a summary line. */
        char text[ROUTES_VERBOSE_MAX];
        size_t len = 0;
        for (size_t i = 0; i <= rep->n_checks; i++) {
            int n;
            size_t room = sizeof(text) - len;
            if (i < rep->n_checks && rep->checks[i].ok)
                n = snprintf(text + len, room, "[+]%s ok\n", rep->checks[i].name);
            else if (i < rep->n_checks)
                n = snprintf(text + len, room, "[-]%s failed: %s\n", rep->checks[i].name,
                             rep->checks[i].reason);
            else
                n = snprintf(text + len, room, "%s check %s\n", what,
                             rep->ok ? "passed" : "failed");
            if (n < 0 || (size_t)n >= room) {
                len = sizeof(text) - 1; /* truncated; reasons are bounded so this is rare */
                break;
            }
            len += (size_t)n;
        }
        if (http_response_set_body(resp, code, ROUTES_TEXT, text, len) < 0)
            (void)http_response_error(resp, 500, "out of memory");
        no_store(resp);
        return;
    }

    if (hr->valid && same_report(&hr->rep, rep)) {
        if (hr->age_len && hr->rep.age_ms != rep->age_ms)
            set_age(hr, rep->age_ms);
    } else if (!health_render(r, rep, hr)) {
        hr = NULL;
    }
    if (hr) {
        free(resp->body);
        resp->body = NULL;
        resp->status = code;
        resp->content_type = ROUTES_JSON;
        resp->body_ref = hr->body;
        resp->body_len = hr->len;
    } else {
        /* too long for the cache (or no memory): render into the response */
        cJSON *o = health_json(r, rep, false);
        if (!o || routes_json(resp, code, o) < 0)
            (void)http_response_error(resp, 500, "out of memory");
        cJSON_Delete(o);
    }
    no_store(resp);
}

static void route_readyz(void *arg, const struct http_request *req, struct http_response *resp)
{
    struct routes *r = arg;
    const struct cache_snapshot *s = cache_acquire(r->cfg.cache);
    struct health_report rep;
    health_ready(s, clock_mono_ms(), &r->cfg.health, &rep);
    char note[CACHE_MAX_ERROR + 64] = "";
    if (strcmp(req->path, "/readyz") == 0)
        health_backup_note(&s->backup, clock_wall_ms(), note, sizeof note);
    cache_release(r->cfg.cache, s);
    if (!note[0] || http_query_param(req, "verbose", NULL, 0)) {
        health_answer(r, req, resp, &rep, strcmp(req->path, "/healthz") == 0 ? "healthz" : "readyz",
                      &r->render[RENDER_READY]);
        if (note[0] && resp->body && !resp->body_ref) {
            /* verbose text: one more line, not a check (a stale backup is no failure) */
            size_t len = resp->body_len, add = strlen(note) + 16;
            char *b = realloc(resp->body, len + add);
            if (b) {
                resp->body = b;
                resp->body_len = len + (size_t)snprintf(b + len, add, "[!]backup %s\n", note);
            }
        }
        return;
    }
    /* a stale backup is said, not failed: the usual body plus "backup_warning" (uncached) */
    cJSON *o = health_json(r, &rep, false);
    if (!o || !cJSON_AddStringToObject(o, "backup_warning", note) ||
        routes_json(resp, rep.ok ? 200 : 503, o) < 0)
        (void)http_response_error(resp, 500, "out of memory");
    cJSON_Delete(o);
    no_store(resp);
}

static void route_livez(void *arg, const struct http_request *req, struct http_response *resp)
{
    struct routes *r = arg;
    const struct cache_snapshot *s = cache_acquire(r->cfg.cache);
    struct health_report rep;
    health_live(s, clock_mono_ms(), cache_start_ms(r->cfg.cache), &r->cfg.health, &rep);
    cache_release(r->cfg.cache, s);
    health_answer(r, req, resp, &rep, "livez", &r->render[RENDER_LIVE]);
}

/* ---- /status ------------------------------------------------------------------------------ */

static bool status_json(cJSON *o, const struct cache_status *st)
{
    bool ok =
        add_hex(o, "cluster_id", st->cluster_id) && add_hex(o, "member_id", st->member_id) &&
        add_int(o, "revision", st->revision) &&
        cJSON_AddStringToObject(o, "version", st->version) && add_int(o, "db_size", st->db_size) &&
        add_int(o, "db_size_in_use", st->db_size_in_use) &&
        (st->leader ? add_hex(o, "leader", st->leader) : cJSON_AddNullToObject(o, "leader")) &&
        add_uint(o, "raft_index", st->raft_index) && add_uint(o, "raft_term", st->raft_term) &&
        add_uint(o, "raft_applied_index", st->raft_applied_index) &&
        cJSON_AddBoolToObject(o, "is_learner", st->is_learner);
    cJSON *errs = ok ? cJSON_AddArrayToObject(o, "errors") : NULL;
    for (size_t i = 0; errs && i < st->n_errors && i < CACHE_MAX_STATUS_ERRORS; i++) {
        cJSON *e = cJSON_CreateString(st->errors[i]);
        if (!e || !cJSON_AddItemToArray(errs, e)) {
            cJSON_Delete(e);
            return false;
        }
    }
    return errs != NULL;
}

static void route_status(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct routes *r = arg;
    const struct cache_snapshot *s = cache_acquire(r->cfg.cache);
    const struct cache_local *l = &s->local;
    int64_t now = clock_mono_ms();
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddBoolToObject(o, "ok", l->probed_at_ms && l->status_ok) &&
              add_str_or_null(o, "error", l->status_ok ? "" : l->status_error) &&
              add_age(o, "age_ms", l->probed_at_ms, now) && add_uint(o, "took_ms", l->took_ms) &&
              add_age(o, "status_age_ms", l->status_at_ms, now);
    if (ok && l->have_status) {
        cJSON *st = cJSON_AddObjectToObject(o, "status");
        ok = st && status_json(st, &l->status);
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "status") != NULL;
    }
    cJSON *alarms = ok ? cJSON_AddArrayToObject(o, "alarms") : NULL;
    for (size_t i = 0; alarms && i < l->n_alarms && i < CACHE_MAX_ALARMS; i++) {
        cJSON *a = cJSON_CreateObject();
        if (!a || !cJSON_AddItemToArray(alarms, a)) {
            cJSON_Delete(a);
            alarms = NULL;
            break;
        }
        if (!add_hex(a, "member_id", l->alarms[i].member_id) ||
            !cJSON_AddStringToObject(a, "alarm", etcd_alarm_name(l->alarms[i].type)))
            alarms = NULL;
    }
    ok = alarms != NULL;
    /* Learner promotion (promote.c): only once it started, so voters' bodies stay short. */
    const struct cache_promote *pr = &s->promote;
    if (ok && (pr->active || pr->attempts)) {
        cJSON *po = cJSON_AddObjectToObject(o, "promote");
        ok = po && cJSON_AddBoolToObject(po, "active", pr->active) &&
             cJSON_AddBoolToObject(po, "promoted", pr->promoted) &&
             add_uint(po, "attempts", pr->attempts) &&
             add_str_or_null(po, "last_error", pr->last_error) &&
             (pr->active && pr->next_try_ms
                  ? add_int(po, "next_try_in_ms", pr->next_try_ms > now ? pr->next_try_ms - now : 0)
                  : cJSON_AddNullToObject(po, "next_try_in_ms"));
    }
    if (ok && s->backup.enabled) {
        int64_t wall = clock_wall_ms();
        int64_t age = health_backup_age_ms(&s->backup, wall);
        cJSON *bo = cJSON_AddObjectToObject(o, "backup");
        ok = bo && (age >= 0 ? add_int(bo, "last_good_age_s", age / 1000)
                             : cJSON_AddNullToObject(bo, "last_good_age_s")) != NULL;
        char note[CACHE_MAX_ERROR + 64];
        health_backup_note(&s->backup, wall, note, sizeof note);
        ok = ok && add_str_or_null(bo, "warning", note);
    }
    /* Day-2 maintenance (maint.c): db use against the quota, the coordinator's last step. */
    const struct cache_maint *mt = &s->maint;
    if (ok && mt->enabled) {
        cJSON *db = cJSON_AddObjectToObject(o, "db");
        ok = db && add_int(db, "size", l->status.db_size) &&
             add_int(db, "in_use", l->status.db_size_in_use) &&
             (mt->quota > 0 ? add_int(db, "quota", mt->quota)
                            : cJSON_AddNullToObject(db, "quota")) &&
             (mt->quota > 0
                  ? cJSON_AddNumberToObject(db, "percent_used",
                                            (double)l->status.db_size * 100.0 / (double)mt->quota)
                  : cJSON_AddNullToObject(db, "percent_used"));
        cJSON *mo = ok ? cJSON_AddObjectToObject(o, "maintenance") : NULL;
        ok = mo && cJSON_AddBoolToObject(mo, "coordinator", mt->coordinator) &&
             cJSON_AddBoolToObject(mo, "defragmenting", mt->defragmenting) &&
             add_str_or_null(mo, "last_step", mt->last_step) &&
             add_str_or_null(mo, "nospace_reason", mt->nospace_reason) &&
             add_str_or_null(mo, "hashkv", mt->hashkv_verdict) &&
             add_age(mo, "hashkv_age_ms", mt->hashkv_at_ms, now);
    }
    /* 503 until the member answered once: there is nothing to show yet. */
    if (!ok || routes_json(resp, l->have_status ? 200 : 503, o) < 0)
        (void)http_response_error(resp, 500, "out of memory");
    cJSON_Delete(o);
    cache_release(r->cfg.cache, s);
    no_store(resp);
}

/* ---- /members ----------------------------------------------------------------------------- */

/* The leader most members agree on (the local member's view breaks ties). */
static uint64_t cluster_leader(const struct cache_snapshot *s)
{
    const struct cache_cluster *cl = &s->cluster;
    uint64_t best = 0;
    size_t best_n = 0;
    for (size_t i = 0; i < cl->n_members && i < CACHE_MAX_MEMBERS; i++) {
        uint64_t id = cl->members[i].answered ? cl->members[i].status.leader : 0;
        if (!id)
            continue;
        size_t n = 0;
        for (size_t j = 0; j < cl->n_members && j < CACHE_MAX_MEMBERS; j++)
            n += cl->members[j].answered && cl->members[j].status.leader == id;
        if (n > best_n || (n == best_n && s->local.status_ok && id == s->local.status.leader)) {
            best = id;
            best_n = n;
        }
    }
    return best;
}

static cJSON *member_json(const struct cache_member *m, uint64_t leader,
                          const struct cache_maint *mt)
{
    const struct cache_maint_member *h = NULL;
    for (size_t j = 0; j < mt->n_members && j < CACHE_MAX_MEMBERS; j++)
        if (mt->members[j].id == m->id)
            h = &mt->members[j];
    char hash[9];
    (void)snprintf(hash, sizeof(hash), "%08" PRIx32, h ? h->hash : 0);
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_hex(o, "id", m->id) && cJSON_AddStringToObject(o, "name", m->name) &&
              add_strings(o, "peer_urls", m->peer_urls, m->n_peer_urls) &&
              add_strings(o, "client_urls", m->client_urls, m->n_client_urls) &&
              cJSON_AddBoolToObject(o, "learner", m->is_learner) &&
              cJSON_AddBoolToObject(o, "started", m->started) &&
              cJSON_AddBoolToObject(o, "healthy", m->healthy) &&
              cJSON_AddBoolToObject(o, "leader", leader && m->id == leader) &&
              (m->answered || m->took_ms ? add_uint(o, "took_ms", m->took_ms)
                                         : cJSON_AddNullToObject(o, "took_ms")) &&
              add_str_or_null(o, "error", m->error) &&
              add_str_or_null(o, "hashkv", h && h->hash_ok ? hash : "") &&
              cJSON_AddBoolToObject(o, "divergent", h && h->divergent);
    if (ok && m->answered)
        ok = add_int(o, "db_size", m->status.db_size) &&
             add_int(o, "db_size_in_use", m->status.db_size_in_use) &&
             add_uint(o, "raft_index", m->status.raft_index) &&
             add_uint(o, "raft_term", m->status.raft_term) &&
             cJSON_AddStringToObject(o, "version", m->status.version);
    else if (ok)
        ok = cJSON_AddNullToObject(o, "db_size") && cJSON_AddNullToObject(o, "db_size_in_use") &&
             cJSON_AddNullToObject(o, "raft_index") && cJSON_AddNullToObject(o, "raft_term") &&
             cJSON_AddNullToObject(o, "version");
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* `Accept: text/plain` or `?format=table`: etcdctl's table (maint_table.c). */
static bool wants_table(const struct http_request *req)
{
    char fmt[16] = "";
    const char *accept = http_request_header(req, "accept");
    return (http_query_param(req, "format", fmt, sizeof(fmt)) && strcmp(fmt, "table") == 0) ||
           (accept && strstr(accept, "text/plain"));
}

static void route_members(void *arg, const struct http_request *req, struct http_response *resp)
{
    struct routes *r = arg;
    const struct cache_snapshot *s = cache_acquire(r->cfg.cache);
    const struct cache_cluster *cl = &s->cluster;
    int64_t now = clock_mono_ms();
    uint64_t leader = cluster_leader(s);
    if (wants_table(req)) {
        char *text = NULL;
        size_t len = 0;
        if (maint_table_render(s, leader, &text, &len) < 0) {
            (void)http_response_error(resp, 500, "out of memory");
        } else {
            free(resp->body);
            resp->status = cl->probed_at_ms ? 200 : 503;
            resp->content_type = ROUTES_TEXT;
            resp->body = text;
            resp->body_ref = NULL;
            resp->body_len = len;
        }
        cache_release(r->cfg.cache, s);
        no_store(resp);
        return;
    }
    struct cache_verdict v;
    cache_verdict(cl, &v);

    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddBoolToObject(o, "ok", cl->ok) &&
              add_str_or_null(o, "error", cl->ok ? "" : cl->error) &&
              add_age(o, "age_ms", cl->probed_at_ms, now) && add_uint(o, "took_ms", cl->took_ms) &&
              (leader ? add_hex(o, "leader", leader) : cJSON_AddNullToObject(o, "leader")) &&
              cJSON_AddBoolToObject(o, "truncated", cl->truncated);
    cJSON *arr = ok ? cJSON_AddArrayToObject(o, "members") : NULL;
    for (size_t i = 0; arr && i < cl->n_members && i < CACHE_MAX_MEMBERS; i++) {
        cJSON *m = member_json(&cl->members[i], leader, &s->maint);
        if (!m || !cJSON_AddItemToArray(arr, m)) {
            cJSON_Delete(m);
            arr = NULL;
        }
    }
    cJSON *vo = arr ? cJSON_AddObjectToObject(o, "verdict") : NULL;
    cJSON *failing = vo ? cJSON_AddArrayToObject(vo, "failing") : NULL;
    ok = failing && cJSON_AddBoolToObject(vo, "quorum", v.quorum) &&
         cJSON_AddBoolToObject(vo, "recoverable", v.recoverable) &&
         add_uint(vo, "voters", v.n_voters) && add_uint(vo, "healthy_voters", v.n_healthy_voters) &&
         add_str_or_null(vo, "hashkv", s->maint.hashkv_verdict);
    for (size_t i = 0; ok && i < v.n_failing; i++) {
        const struct cache_member *m = &cl->members[v.failing[i]];
        char h[17];
        (void)etcd_id_hex(m->id, h);
        /* A member that never started has no name yet: name it by its ID. */
        cJSON *n = cJSON_CreateString(m->name[0] ? m->name : h);
        if (!n || !cJSON_AddItemToArray(failing, n)) {
            cJSON_Delete(n);
            ok = false;
        }
    }
    /* 503 until the first cluster probe finished: no table to show. */
    if (!ok || routes_json(resp, cl->probed_at_ms ? 200 : 503, o) < 0)
        (void)http_response_error(resp, 500, "out of memory");
    cJSON_Delete(o);
    cache_release(r->cfg.cache, s);
    no_store(resp);
}

/* ---- /metrics ----------------------------------------------------------------------------- */

static void route_metrics(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct routes *r = arg;
    char *text = NULL;
    size_t len = 0;
    int rc = metrics_render(r->cfg.cache, &r->cfg.health, r->cfg.version, r->metrics, r->n_metrics,
                            &text, &len);
    if (rc < 0) {
        (void)http_response_error(resp, 500, rc == -E2BIG ? "metrics too large" : "out of memory");
        return;
    }
    free(resp->body);
    resp->status = 200;
    resp->content_type = METRICS_CONTENT_TYPE;
    resp->body = text;
    resp->body_ref = NULL;
    resp->body_len = len;
}

/* ---- table and dispatch ------------------------------------------------------------------- */

struct routes *routes_new(const struct routes_config *cfg)
{
    struct routes *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cfg = *cfg;
    static const struct {
        const char *path;
        http_handler_fn fn;
    } builtin[] = {
        {"/livez", route_livez},     {"/readyz", route_readyz}, {"/healthz", route_readyz},
        {"/members", route_members}, {"/status", route_status}, {"/metrics", route_metrics},
    };
    for (size_t i = 0; i < ARRAY_SIZE(builtin); i++) {
        struct route rt = {
            .path = builtin[i].path, .methods = ROUTES_GET, .fn = builtin[i].fn, .arg = r};
        (void)routes_add(r, &rt); /* cannot fail: the table is empty and larger */
    }
    return r;
}

void routes_free(struct routes *r)
{
    free(r);
}

int routes_add(struct routes *r, const struct route *route)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->table[i].prefix == route->prefix && strcmp(r->table[i].path, route->path) == 0)
            return -EEXIST;
    if (r->n == ROUTES_MAX)
        return -ENOSPC;
    r->table[r->n++] = *route;
    return 0;
}

int routes_add_metrics(struct routes *r, const struct metrics_source *src)
{
    if (r->n_metrics == METRICS_MAX_SOURCES)
        return -ENOSPC;
    r->metrics[r->n_metrics++] = *src;
    return 0;
}

static const struct route *find(const struct routes *r, const char *path)
{
    const struct route *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct route *rt = &r->table[i];
        if (!rt->prefix) {
            if (strcmp(rt->path, path) == 0)
                return rt;
            continue;
        }
        size_t n = strlen(rt->path);
        if (n > best_len && strncmp(rt->path, path, n) == 0) {
            best = rt;
            best_len = n;
        }
    }
    return best;
}

/* Is `method` one of the comma-separated tokens in `allow`? HEAD rides on GET. */
// NOLINTNEXTLINE(misc-no-recursion): one level at most, HEAD is allowed where GET is
static bool method_allowed(const char *allow, const char *method)
{
    size_t mlen = strlen(method);
    for (const char *p = allow; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == mlen && strncmp(p, method, n) == 0)
            return true;
        p += n;
    }
    return strcmp(method, "HEAD") == 0 && method_allowed(allow, "GET");
}

void routes_handle(void *arg, const struct http_request *req, struct http_response *resp)
{
    struct routes *r = arg;
    const struct route *rt = find(r, req->path);
    if (!rt) {
        (void)http_response_error(resp, 404, "not found");
    } else if (!method_allowed(rt->methods, req->method)) {
        (void)http_response_error(resp, 405, "method not allowed");
        (void)http_response_add_header(resp, "allow", rt->methods);
    } else {
        rt->fn(rt->arg, req, resp);
        if (resp->status == 0) /* a handler that set nothing is a bug; say so */
            (void)http_response_error(resp, 500, "handler set no response");
    }
}

void routes_on_done(void *arg, const struct http_request *req, int status, bool completed)
{
    (void)completed;
    struct routes *r = arg;
    const struct route *rt = req && req->path ? find(r, req->path) : NULL;
    cache_count_http(r->cfg.cache, rt ? rt->path : ROUTES_OTHER_LABEL, status);
}
