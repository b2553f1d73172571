/* maint_peer.c - the HashKV verdict as JSON between agents (maint_peer.h): render from the cache,
 * strict parse, the follower's decision and the leader's agent URL.
 *
 * No I/O here: the route reads the cache on the event loop, maint.c fetches and acts on its own
 * thread; the comparison itself is maint_plan.c's. */
#include "maint_peer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "hex.h"

static bool add_hex(cJSON *o, const char *k, uint64_t id)
{
    char h[17];
    return cJSON_AddStringToObject(o, k, etcd_id_hex(id, h)) != NULL;
}

int maint_peer_render(const struct cache_snapshot *s, int64_t now_ms, char **out, size_t *len)
{
    const struct cache_local *l = &s->local;
    const struct cache_maint *mt = &s->maint;

    *out = NULL;
    *len = 0;
    if (!l->have_status || !l->status.member_id || !l->status.cluster_id)
        return -EAGAIN;
    bool checked = mt->hashkv_verdict[0] && mt->hashkv_revision > 0;
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o && add_hex(o, "member_id", l->status.member_id) &&
        add_hex(o, "cluster_id", l->status.cluster_id) &&
        cJSON_AddBoolToObject(o, "coordinator", mt->coordinator) &&
        cJSON_AddStringToObject(o, "verdict", checked ? mt->hashkv_verdict : "") &&
        cJSON_AddNumberToObject(o, "revision", checked ? (double)mt->hashkv_revision : 0) &&
        cJSON_AddNumberToObject(o, "age_ms", checked ? (double)(now_ms - mt->hashkv_at_ms) : -1) &&
        cJSON_AddNumberToObject(o, "cluster_size", checked ? (double)mt->n_members : 0);
    cJSON *arr = ok ? cJSON_AddArrayToObject(o, "members") : NULL;
    for (size_t i = 0; arr && checked && i < mt->n_members && i < MAINT_PLAN_MAX_MEMBERS; i++) {
        const struct cache_maint_member *cm = &mt->members[i];
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddItemToArray(arr, m)) {
            cJSON_Delete(m);
            arr = NULL;
            break;
        }
        if (!add_hex(m, "id", cm->id) || !cJSON_AddBoolToObject(m, "ok", cm->hash_ok) ||
            !cJSON_AddNumberToObject(m, "hash", cm->hash_ok ? (double)cm->hash : 0) ||
            !cJSON_AddNumberToObject(m, "compact_revision",
                                     cm->hash_ok ? (double)cm->compact_revision : 0))
            arr = NULL;
    }
    char *text = arr ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return -ENOMEM;
    *len = strlen(text);
    *out = text;
    return 0;
}

/* ---- parse -------------------------------------------------------------------------------- */

static int parse_id(const cJSON *v, uint64_t *out)
{
    const char *s = cJSON_GetStringValue(v);
    uint64_t x = 0;
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 16)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int d = hex_value(s[i]);
        if (d < 0)
            return -EINVAL;
        x = x << 4 | (uint64_t)d;
    }
    if (x == 0)
        return -EINVAL;
    *out = x;
    return 0;
}

static int parse_num(const cJSON *v, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -EINVAL;
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != (double)(int64_t)d)
        return -EINVAL;
    *out = (int64_t)d;
    return 0;
}

/* 2^53: the largest integer a JSON number carries exactly */
#define PEER_NUM_MAX 9007199254740992.0

static int parse_member(const cJSON *m, struct maint_plan_hash *h)
{
    int64_t x;
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(m, "ok");
    if (!cJSON_IsObject(m) || cJSON_GetArraySize(m) != 4 || !cJSON_IsBool(ok))
        return -EINVAL;
    if (parse_id(cJSON_GetObjectItemCaseSensitive(m, "id"), &h->id) < 0)
        return -EINVAL;
    h->ok = cJSON_IsTrue(ok);
    if (parse_num(cJSON_GetObjectItemCaseSensitive(m, "hash"), 0, 4294967295.0, &x) < 0)
        return -EINVAL;
    h->hash = (uint32_t)x;
    if (parse_num(cJSON_GetObjectItemCaseSensitive(m, "compact_revision"), -1, PEER_NUM_MAX,
                  &h->compact_revision) < 0)
        return -EINVAL;
    return 0;
}

int maint_peer_parse(const char *buf, size_t len, struct maint_peer_verdict *v)
{
    memset(v, 0, sizeof(*v));
    if (len == 0 || len > MAINT_PEER_MAX_BYTES || memchr(buf, '\0', len))
        return -EINVAL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!j)
        return -EINVAL;
    int rc = -EINVAL;
    int64_t x;
    const cJSON *co = cJSON_GetObjectItemCaseSensitive(j, "coordinator");
    const char *verdict = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "verdict"));
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "members");
    while (end && end < buf + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end != buf + len || !cJSON_IsObject(j) || cJSON_GetArraySize(j) != 8 || !cJSON_IsBool(co) ||
        !verdict || strlen(verdict) >= sizeof(v->verdict) || !cJSON_IsArray(arr) ||
        cJSON_GetArraySize(arr) > MAINT_PLAN_MAX_MEMBERS)
        goto out;
    if (parse_id(cJSON_GetObjectItemCaseSensitive(j, "member_id"), &v->member_id) < 0 ||
        parse_id(cJSON_GetObjectItemCaseSensitive(j, "cluster_id"), &v->cluster_id) < 0 ||
        parse_num(cJSON_GetObjectItemCaseSensitive(j, "revision"), 0, PEER_NUM_MAX, &v->revision) <
            0 ||
        parse_num(cJSON_GetObjectItemCaseSensitive(j, "age_ms"), -1, PEER_NUM_MAX, &v->age_ms) <
            0 ||
        parse_num(cJSON_GetObjectItemCaseSensitive(j, "cluster_size"), 0, MAINT_PLAN_MAX_MEMBERS,
                  &x) < 0)
        goto out;
    v->coordinator = cJSON_IsTrue(co);
    memcpy(v->verdict, verdict, strlen(verdict) + 1);
    v->n_members = (size_t)x;
    const cJSON *m;
    cJSON_ArrayForEach(m, arr)
    {
        if (parse_member(m, &v->h[v->n]) < 0)
            goto out;
        for (size_t i = 0; i < v->n; i++)
            if (v->h[i].id == v->h[v->n].id)
                goto out;
        v->n++;
    }
    if (v->n > v->n_members)
        goto out;
    rc = 0;
out:
    cJSON_Delete(j);
    if (rc < 0)
        memset(v, 0, sizeof(*v));
    return rc;
}

/* ---- the follower's decision ------------------------------------------------------------- */

enum maint_marker_action maint_peer_decide(const struct maint_peer_verdict *v, uint64_t self,
                                           uint64_t cluster_id, uint64_t leader,
                                           size_t local_members, uint32_t *majority_hash,
                                           uint32_t *own_hash, const char **why)
{
    *why = "";
    if (!v->coordinator || !leader || v->member_id != leader) {
        *why = "not the leader's agent";
        return MAINT_MARKER_LEAVE;
    }
    if (!cluster_id || v->cluster_id != cluster_id) {
        *why = "another cluster";
        return MAINT_MARKER_LEAVE;
    }
    if (v->revision <= 0 || !v->verdict[0]) {
        *why = "no check yet";
        return MAINT_MARKER_LEAVE;
    }
    bool named[MAINT_PLAN_MAX_MEMBERS];
    size_t members = v->n_members > local_members ? v->n_members : local_members;
    enum maint_hash_verdict hv = maint_plan_hash_compare(v->h, v->n, members, named);
    uint32_t maj = 0;
    enum maint_marker_action a = maint_plan_marker(v->h, v->n, hv, named, self, &maj);
    for (size_t i = 0; i < v->n; i++)
        if (v->h[i].id == self)
            *own_hash = v->h[i].hash;
    if (a == MAINT_MARKER_WRITE) {
        if (strcmp(v->verdict, maint_plan_hash_verdict_name(MAINT_HASH_DIVERGENT)) != 0) {
            *why = "the leader's verdict does not name a divergent member";
            return MAINT_MARKER_LEAVE;
        }
        *majority_hash = maj;
        *why = "a majority of the cluster has another hash at R";
    } else if (a == MAINT_MARKER_REMOVE) {
        *why = "our hash agrees with the majority at R";
    } else {
        *why = hv == MAINT_HASH_INCONSISTENT ? "inconsistent cluster: nobody named"
                                             : "no evidence about our member";
    }
    return a;
}

/* ---- URLs --------------------------------------------------------------------------------- */

int maint_peer_url(const char *client_url, const char *scheme, const char *port, char *out,
                   size_t out_len)
{
    const char *h = client_url ? strstr(client_url, "://") : NULL;
    if (!h || !scheme || !port || !port[0])
        return -EINVAL;
    h += 3;
    size_t n;
    if (*h == '[') {
        const char *e = strchr(h, ']');
        if (!e)
            return -EINVAL;
        n = (size_t)(e - h) + 1;
    } else {
        n = strcspn(h, ":/?#");
    }
    if (n == 0 || n == 2 * (*h == '['))
        return -EINVAL;
    int w = snprintf(out, out_len, "%s://%.*s:%s", scheme, (int)n, h, port);
    return w < 0 || (size_t)w >= out_len ? -ENAMETOOLONG : 0;
}

int maint_peer_listen_port(const char *listen, char *out, size_t out_len)
{
    const char *c = listen ? strrchr(listen, ':') : NULL;
    if (!c || !c[1] || strspn(c + 1, "0123456789") != strlen(c + 1) || strlen(c + 1) > 5)
        return -EINVAL;
    if (strlen(c + 1) >= out_len)
        return -EINVAL;
    memcpy(out, c + 1, strlen(c + 1) + 1);
    return 0;
}
