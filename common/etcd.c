/* etcd.c - the typed etcd v3 calls of etcd.h: one gRPC call each, outcome in a grpc_status.
 * Message encoding/decoding and the snapshot stream checks are proto.c's; HTTP/2, TLS,
 * deadlines and endpoint failover are grpc.c's. Nothing is retried here. */
#include "etcd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define PATH_MEMBER_LIST "/etcdserverpb.Cluster/MemberList"
#define PATH_MEMBER_ADD "/etcdserverpb.Cluster/MemberAdd"
#define PATH_MEMBER_REMOVE "/etcdserverpb.Cluster/MemberRemove"
#define PATH_MEMBER_PROMOTE "/etcdserverpb.Cluster/MemberPromote"
#define PATH_STATUS "/etcdserverpb.Maintenance/Status"
#define PATH_ALARM "/etcdserverpb.Maintenance/Alarm"
#define PATH_SNAPSHOT "/etcdserverpb.Maintenance/Snapshot"
#define PATH_RANGE "/etcdserverpb.KV/Range"
#define PATH_PUT "/etcdserverpb.KV/Put"
#define PATH_DEFRAGMENT "/etcdserverpb.Maintenance/Defragment"
#define PATH_MOVE_LEADER "/etcdserverpb.Maintenance/MoveLeader"
#define PATH_HASHKV "/etcdserverpb.Maintenance/HashKV"
#define PATH_COMPACT "/etcdserverpb.KV/Compact"
#define QUOTA_METRIC "etcd_server_quota_backend_bytes"

static int local_status(struct grpc_status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A failure decided here (never reached or not understood from the server). */
static int local_status(struct grpc_status *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof(st->message), fmt, ap);
    va_end(ap);
    st->code = code;
    st->transport = true;
    return code;
}

/* The status a call fills: the caller's, or *local when it passed none; reset to OK. */
static struct grpc_status *status_begin(struct grpc_status *st, struct grpc_status *local)
{
    st = st ? st : local;
    memset(st, 0, sizeof(*st));
    return st;
}

/* A decoder's result rc on the len-byte response `what`: st->code unchanged when it decoded,
 * else a local INTERNAL (malformed) or RESOURCE_EXHAUSTED (too big) status. */
static int decode_check(struct grpc_status *st, const char *what, int rc, size_t len)
{
    if (rc == 0)
        return st->code;
    if (rc == -ENOMEM)
        return local_status(st, GRPC_RESOURCE_EXHAUSTED,
                            "decode %s (%zu bytes): out of memory or over the %u-byte limit", what,
                            len, PROTO_MAX_DECODE_ALLOC);
    return local_status(st, GRPC_INTERNAL, "decode %s: malformed message (%zu bytes)", what, len);
}

/* Sends a request made by an encoder (enc_rc is the encoder's result; req is consumed) and
 * returns the serialized response in *resp (caller frees). Returns st->code. */
static int roundtrip(struct grpc_channel *ch, const char *path, int enc_rc, uint8_t *req,
                     size_t req_len, int timeout_ms, uint8_t **resp, size_t *resp_len,
                     struct grpc_status *st)
{
    *resp = NULL;
    *resp_len = 0;
    if (enc_rc) {
        local_status(st, enc_rc == -ENOMEM ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT,
                     "%s: %s", path,
                     enc_rc == -ENOMEM ? "out of memory" : "invalid request argument");
        goto out;
    }
    if (!ch) {
        local_status(st, GRPC_INVALID_ARGUMENT, "%s: no channel", path);
        goto out;
    }
    if (grpc_call_unary(ch, path, req, req_len, timeout_ms, resp, resp_len, st) != GRPC_OK) {
        free(*resp);
        *resp = NULL;
        *resp_len = 0;
    }
out:
    free(req);
    return st->code;
}

int etcd_member_list(struct grpc_channel *ch, int timeout_ms, struct etcd_member_list *out,
                     struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;

    st = status_begin(st, &local);
    memset(out, 0, sizeof(*out));
    int enc = proto_encode_member_list(&req, &req_len);
    if (roundtrip(ch, PATH_MEMBER_LIST, enc, req, req_len, timeout_ms, &resp, &resp_len, st) ==
        GRPC_OK)
        decode_check(st, "MemberListResponse",
                     proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, resp, resp_len, out),
                     resp_len);
    free(resp);
    return st->code;
}

int etcd_member_add(struct grpc_channel *ch, const char *const *peer_urls, size_t n_peer_urls,
                    bool is_learner, int timeout_ms, struct etcd_member *added,
                    struct etcd_member_list *members, struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;

    st = status_begin(st, &local);
    if (members)
        memset(members, 0, sizeof(*members));
    if (!added)
        return local_status(st, GRPC_INVALID_ARGUMENT, "%s: no output member", PATH_MEMBER_ADD);
    memset(added, 0, sizeof(*added));
    int enc = proto_encode_member_add(peer_urls, n_peer_urls, is_learner, &req, &req_len);
    if (roundtrip(ch, PATH_MEMBER_ADD, enc, req, req_len, timeout_ms, &resp, &resp_len, st) ==
        GRPC_OK)
        decode_check(st, "MemberAddResponse",
                     proto_decode_member_add(resp, resp_len, added, members), resp_len);
    free(resp);
    return st->code;
}

/* Remove and promote: same request ({ID 1}) and response shape, different paths. */
static int member_change(struct grpc_channel *ch, const char *path, enum proto_members_kind kind,
                         uint64_t id, int timeout_ms, struct etcd_member_list *members,
                         struct grpc_status *st)
{
    struct grpc_status local;
    struct etcd_member_list ignored;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;
    int enc;

    st = status_begin(st, &local);
    if (members)
        memset(members, 0, sizeof(*members));
    if (kind == PROTO_MEMBER_REMOVE_RESPONSE)
        enc = proto_encode_member_remove(id, &req, &req_len);
    else
        enc = proto_encode_member_promote(id, &req, &req_len);
    if (roundtrip(ch, path, enc, req, req_len, timeout_ms, &resp, &resp_len, st))
        goto out;
    /* decoded even when the caller does not want the list: a malformed answer is an error */
    int rc = proto_decode_members(kind, resp, resp_len, members ? members : &ignored);
    if (decode_check(st,
                     kind == PROTO_MEMBER_REMOVE_RESPONSE ? "MemberRemoveResponse"
                                                          : "MemberPromoteResponse",
                     rc, resp_len) == GRPC_OK &&
        !members)
        proto_member_list_free(&ignored);
out:
    free(resp);
    return st->code;
}

int etcd_member_remove(struct grpc_channel *ch, uint64_t id, int timeout_ms,
                       struct etcd_member_list *members, struct grpc_status *st)
{
    return member_change(ch, PATH_MEMBER_REMOVE, PROTO_MEMBER_REMOVE_RESPONSE, id, timeout_ms,
                         members, st);
}

int etcd_member_promote(struct grpc_channel *ch, uint64_t id, int timeout_ms,
                        struct etcd_member_list *members, struct grpc_status *st)
{
    return member_change(ch, PATH_MEMBER_PROMOTE, PROTO_MEMBER_PROMOTE_RESPONSE, id, timeout_ms,
                         members, st);
}

int etcd_status(struct grpc_channel *ch, int timeout_ms, struct etcd_status *out,
                struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;

    st = status_begin(st, &local);
    memset(out, 0, sizeof(*out));
    int enc = proto_encode_status(&req, &req_len);
    if (roundtrip(ch, PATH_STATUS, enc, req, req_len, timeout_ms, &resp, &resp_len, st) == GRPC_OK)
        decode_check(st, "StatusResponse", proto_decode_status(resp, resp_len, out), resp_len);
    free(resp);
    return st->code;
}

int etcd_alarm_list(struct grpc_channel *ch, int timeout_ms, struct etcd_header *header,
                    struct etcd_alarm **alarms, size_t *n_alarms, struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;

    st = status_begin(st, &local);
    if (header)
        memset(header, 0, sizeof(*header));
    if (!alarms || !n_alarms)
        return local_status(st, GRPC_INVALID_ARGUMENT, "%s: no output", PATH_ALARM);
    *alarms = NULL;
    *n_alarms = 0;
    int enc = proto_encode_alarm_get(&req, &req_len);
    if (roundtrip(ch, PATH_ALARM, enc, req, req_len, timeout_ms, &resp, &resp_len, st) == GRPC_OK)
        decode_check(st, "AlarmResponse",
                     proto_decode_alarms(resp, resp_len, header, alarms, n_alarms), resp_len);
    free(resp);
    return st->code;
}

const char *etcd_alarm_name(int type)
{
    switch (type) {
    case ETCD_ALARM_NONE:
        return "NONE";
    case ETCD_ALARM_NOSPACE:
        return "NOSPACE";
    case ETCD_ALARM_CORRUPT:
        return "CORRUPT";
    default:
        return "UNKNOWN";
    }
}

int etcd_range_serializable(struct grpc_channel *ch, const char *key, int timeout_ms,
                            struct etcd_header *header, int64_t *count, struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;

    st = status_begin(st, &local);
    if (header)
        memset(header, 0, sizeof(*header));
    if (count)
        *count = 0;
    int enc = proto_encode_range_serializable(key, &req, &req_len);
    if (roundtrip(ch, PATH_RANGE, enc, req, req_len, timeout_ms, &resp, &resp_len, st) == GRPC_OK)
        decode_check(st, "RangeResponse", proto_decode_range(resp, resp_len, header, count),
                     resp_len);
    free(resp);
    return st->code;
}

int etcd_put(struct grpc_channel *ch, const char *key, const uint8_t *value, size_t value_len,
             int timeout_ms, struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;

    st = status_begin(st, &local);
    int enc = proto_encode_put(key, value, value_len, &req, &req_len);
    if (roundtrip(ch, PATH_PUT, enc, req, req_len, timeout_ms, &resp, &resp_len, st) == GRPC_OK)
        decode_check(st, "PutResponse", proto_decode_put(resp, resp_len, NULL), resp_len);
    free(resp);
    return st->code;
}

int etcd_snapshot(struct grpc_channel *ch, int timeout_ms, int idle_timeout_ms,
                  etcd_snapshot_fn on_data, void *arg, uint8_t digest_out[32],
                  struct grpc_status *st)
{
    struct grpc_status local;
    struct proto_snapshot snap;
    uint8_t *req = NULL;
    size_t req_len = 0;
    bool snap_ready = false;

    st = status_begin(st, &local);
    if (digest_out)
        memset(digest_out, 0, 32);
    if (!ch) {
        local_status(st, GRPC_INVALID_ARGUMENT, "%s: no channel", PATH_SNAPSHOT);
        goto out;
    }
    if (proto_snapshot_init(&snap, on_data, arg) != 0) {
        local_status(st, GRPC_RESOURCE_EXHAUSTED, "%s: out of memory", PATH_SNAPSHOT);
        goto out;
    }
    snap_ready = true;
    int enc = proto_encode_snapshot(&req, &req_len);
    if (enc) {
        local_status(st, GRPC_RESOURCE_EXHAUSTED, "%s: out of memory", PATH_SNAPSHOT);
        goto out;
    }
    int code = grpc_call_stream(ch, PATH_SNAPSHOT, req, req_len, timeout_ms, idle_timeout_ms,
                                proto_snapshot_feed, &snap, st);
    /* A stream we stopped ourselves: our reason replaces grpc's CANCELLED. */
    if (snap.code)
        local_status(st, snap.code, "%s", snap.err);
    else if (code == GRPC_OK && proto_snapshot_finish(&snap, digest_out) != GRPC_OK)
        local_status(st, snap.code, "%s", snap.err);
out:
    if (snap_ready)
        proto_snapshot_free(&snap);
    free(req);
    return st->code;
}

/* A call whose response is only a header (Defragment, MoveLeader, Compact, Alarm DEACTIVATE:
 * its alarm list is not needed). */
static int header_call(struct grpc_channel *ch, const char *path, int enc, uint8_t *req,
                       size_t req_len, int timeout_ms, struct grpc_status *st)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    if (roundtrip(ch, path, enc, req, req_len, timeout_ms, &resp, &resp_len, st) == GRPC_OK)
        decode_check(st, path, proto_decode_header_only(resp, resp_len, NULL), resp_len);
    free(resp);
    return st->code;
}

int etcd_defragment(struct grpc_channel *ch, int timeout_ms, struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL;
    size_t req_len = 0;
    st = status_begin(st, &local);
    int enc = proto_encode_defragment(&req, &req_len);
    return header_call(ch, PATH_DEFRAGMENT, enc, req, req_len, timeout_ms, st);
}

int etcd_move_leader(struct grpc_channel *ch, uint64_t target_id, int timeout_ms,
                     struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL;
    size_t req_len = 0;
    st = status_begin(st, &local);
    int enc = proto_encode_move_leader(target_id, &req, &req_len);
    return header_call(ch, PATH_MOVE_LEADER, enc, req, req_len, timeout_ms, st);
}

int etcd_compact(struct grpc_channel *ch, int64_t revision, bool physical, int timeout_ms,
                 struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL;
    size_t req_len = 0;
    st = status_begin(st, &local);
    int enc = proto_encode_compact(revision, physical, &req, &req_len);
    return header_call(ch, PATH_COMPACT, enc, req, req_len, timeout_ms, st);
}

int etcd_alarm_deactivate(struct grpc_channel *ch, uint64_t member_id, int type, int timeout_ms,
                          struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL;
    size_t req_len = 0;
    st = status_begin(st, &local);
    int enc = proto_encode_alarm(2, member_id, type, &req, &req_len);
    return header_call(ch, PATH_ALARM, enc, req, req_len, timeout_ms, st);
}

int etcd_hashkv(struct grpc_channel *ch, int64_t revision, int timeout_ms,
                struct etcd_header *header, uint32_t *hash, int64_t *compact_revision,
                struct grpc_status *st)
{
    struct grpc_status local;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;

    st = status_begin(st, &local);
    *hash = 0;
    *compact_revision = 0;
    int enc = proto_encode_hashkv(revision, &req, &req_len);
    if (roundtrip(ch, PATH_HASHKV, enc, req, req_len, timeout_ms, &resp, &resp_len, st) == GRPC_OK)
        decode_check(st, "HashKVResponse",
                     proto_decode_hashkv(resp, resp_len, header, hash, compact_revision), resp_len);
    free(resp);
    return st->code;
}

int etcd_metrics_quota(const char *text, size_t len, int64_t *quota)
{
    static const char name[] = QUOTA_METRIC;
    const size_t nlen = sizeof(name) - 1;
    *quota = 0;
    for (size_t i = 0; i < len;) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t llen = nl ? (size_t)(nl - line) : len - i;
        i += llen + 1;
        /* "NAME VALUE" or "NAME{labels} VALUE"; comments and other metrics skipped */
        if (llen <= nlen || memcmp(line, name, nlen) != 0 ||
            (line[nlen] != ' ' && line[nlen] != '{'))
            continue;
        size_t p = nlen;
        if (line[p] == '{') {
            const char *close = memchr(line + p, '}', llen - p);
            if (!close)
                return -EINVAL;
            p = (size_t)(close - line) + 1;
        }
        while (p < llen && line[p] == ' ')
            p++;
        char num[32];
        size_t n = 0;
        while (p < llen && line[p] != ' ' && n < sizeof(num) - 1)
            num[n++] = line[p++];
        num[n] = '\0';
        if (n == 0 || n == sizeof(num) - 1)
            return -EINVAL;
        /* Prometheus prints large gauges as floats ("8.589934592e+09"). */
        char *end = NULL;
        errno = 0;
        double v = strtod(num, &end);
        if (errno || !end || *end || !(v >= 0) || v > 9.2e18)
            return -EINVAL;
        *quota = (int64_t)v;
        return 0;
    }
    return -ENOENT;
}

void etcd_member_free(struct etcd_member *m)
{
    proto_member_free(m);
}

void etcd_member_list_free(struct etcd_member_list *l)
{
    proto_member_list_free(l);
}

void etcd_status_free(struct etcd_status *s)
{
    proto_status_free(s);
}

const char *etcd_id_hex(uint64_t id, char out[17])
{
    snprintf(out, 17, "%" PRIx64, id);
    return out;
}
