/* proto.c - protobuf-c encoding of etcd requests, bounded decoding of responses into etcd.h's
 * owned structs (deep copies), and the snapshot stream checker (sha256 via OpenSSL EVP).
 * The gRPC calls themselves are etcd.c's; the HTTP/2 transport is grpc.c's. */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "etcd.pb-c.h"
#include "hex.h"
#include "pbwire.h"

/* ---- allocation ------------------------------------------------------------------------ */

void *proto_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void *proto_calloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

char *proto_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = proto_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* protobuf-c's generated structs are not const-correct; pack() only reads through these. */
static char *unconst_str(const char *s)
{
    char *p;
    memcpy(&p, &s, sizeof(p));
    return p;
}

static uint8_t *unconst_bytes(const uint8_t *s)
{
    uint8_t *p;
    memcpy(&p, &s, sizeof(p));
    return p;
}

/* ---- bounded decoding -------------------------------------------------------------------- */

/* Each block carries its size in front so that the running total can be kept exact; the
 * prefix is max_align_t wide to keep protobuf-c's structs aligned. */
#define BLOCK_PREFIX sizeof(max_align_t)

struct decoder {
    size_t used;
    bool oom; /* an allocation failed (limit or malloc): the message may be valid */
    ProtobufCAllocator alloc;
};

static void *decoder_alloc(void *data, size_t size)
{
    struct decoder *d = data;
    if (size > PROTO_MAX_DECODE_ALLOC - d->used) {
        d->oom = true;
        return NULL;
    }
    unsigned char *p = proto_malloc(BLOCK_PREFIX + size);
    if (!p) {
        d->oom = true;
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    d->used += size;
    return p + BLOCK_PREFIX;
}

static void decoder_free(void *data, void *ptr)
{
    struct decoder *d = data;
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - BLOCK_PREFIX;
    size_t size;
    memcpy(&size, p, sizeof(size));
    d->used -= size;
    free(p);
}

static void decoder_init(struct decoder *d)
{
    memset(d, 0, sizeof(*d));
    d->alloc.alloc = decoder_alloc;
    d->alloc.free = decoder_free;
    d->alloc.allocator_data = d;
}

/* Returns the unpacked message or NULL with *rc = -ENOMEM / -EBADMSG. */
static ProtobufCMessage *decoder_unpack(struct decoder *d, const ProtobufCMessageDescriptor *desc,
                                        const uint8_t *buf, size_t len, int *rc)
{
    static const uint8_t empty[1];
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &d->alloc, len, buf ? buf : empty);
    if (!m)
        *rc = d->oom ? -ENOMEM : -EBADMSG;
    return m;
}

static void decoder_release(struct decoder *d, ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, &d->alloc);
}

/* ---- requests ------------------------------------------------------------------------------ */

static int pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > ETCD_MAX_REQUEST)
        return -EINVAL;
    if (n == 0)
        return 0;
    uint8_t *buf = proto_malloc(n);
    if (!buf)
        return -ENOMEM;
    if (protobuf_c_message_pack(m, buf) != n) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    *len = n;
    return 0;
}

int proto_encode_member_list(uint8_t **out, size_t *len)
{
    /* linearizable (3.5+) stays false: 3.4 answers from the local view anyway */
    Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    return pack(&req.base, out, len);
}

int proto_encode_member_add(const char *const *peer_urls, size_t n_peer_urls, bool is_learner,
                            uint8_t **out, size_t *len)
{
    Etcdserverpb__MemberAddRequest req = ETCDSERVERPB__MEMBER_ADD_REQUEST__INIT;
    char *urls[CONFIG_MAX_LIST];

    *out = NULL;
    *len = 0;
    if (!peer_urls || n_peer_urls == 0 || n_peer_urls > CONFIG_MAX_LIST)
        return -EINVAL;
    for (size_t i = 0; i < n_peer_urls; i++) {
        if (!peer_urls[i] || !peer_urls[i][0])
            return -EINVAL;
        urls[i] = unconst_str(peer_urls[i]);
    }
    req.peerurls = urls;
    req.n_peerurls = n_peer_urls;
    req.islearner = is_learner;
    return pack(&req.base, out, len);
}

int proto_encode_member_remove(uint64_t id, uint8_t **out, size_t *len)
{
    Etcdserverpb__MemberRemoveRequest req = ETCDSERVERPB__MEMBER_REMOVE_REQUEST__INIT;
    req.id = id;
    return pack(&req.base, out, len);
}

int proto_encode_member_promote(uint64_t id, uint8_t **out, size_t *len)
{
    Etcdserverpb__MemberPromoteRequest req = ETCDSERVERPB__MEMBER_PROMOTE_REQUEST__INIT;
    req.id = id;
    return pack(&req.base, out, len);
}

int proto_encode_status(uint8_t **out, size_t *len)
{
    Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
    return pack(&req.base, out, len);
}

int proto_encode_alarm_get(uint8_t **out, size_t *len)
{
    Etcdserverpb__AlarmRequest req = ETCDSERVERPB__ALARM_REQUEST__INIT;
    req.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET;
    req.memberid = 0; /* all members */
    req.alarm = ETCDSERVERPB__ALARM_TYPE__NONE;
    return pack(&req.base, out, len);
}

int proto_encode_range_serializable(const char *key, uint8_t **out, size_t *len)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;

    *out = NULL;
    *len = 0;
    if (!key)
        return -EINVAL;
    req.key.data = unconst_bytes((const uint8_t *)key);
    req.key.len = strlen(key);
    req.serializable = 1;
    req.count_only = 1;
    return pack(&req.base, out, len);
}

int proto_encode_put(const char *key, const uint8_t *value, size_t value_len, uint8_t **out,
                     size_t *len)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;

    *out = NULL;
    *len = 0;
    if (!key || (!value && value_len) || value_len > ETCD_MAX_REQUEST)
        return -EINVAL;
    req.key.data = unconst_bytes((const uint8_t *)key);
    req.key.len = strlen(key);
    req.value.data = unconst_bytes(value);
    req.value.len = value_len;
    return pack(&req.base, out, len);
}

int proto_encode_snapshot(uint8_t **out, size_t *len)
{
    Etcdserverpb__SnapshotRequest req = ETCDSERVERPB__SNAPSHOT_REQUEST__INIT;
    return pack(&req.base, out, len);
}

/* ---- maintenance requests (defrag, leadership, consistency, NOSPACE) ------------------------ */

int proto_encode_alarm(int action, uint64_t member_id, int alarm, uint8_t **out, size_t *len)
{
    Etcdserverpb__AlarmRequest req = ETCDSERVERPB__ALARM_REQUEST__INIT;
    *out = NULL;
    *len = 0;
    if (action < 0 || action > 2 || alarm < 0 || alarm > 2)
        return -EINVAL;
    req.action = (Etcdserverpb__AlarmRequest__AlarmAction)action;
    req.memberid = member_id;
    req.alarm = (Etcdserverpb__AlarmType)alarm;
    return pack(&req.base, out, len);
}

int proto_encode_defragment(uint8_t **out, size_t *len)
{
    Etcdserverpb__DefragmentRequest req = ETCDSERVERPB__DEFRAGMENT_REQUEST__INIT;
    return pack(&req.base, out, len);
}

int proto_encode_move_leader(uint64_t target_id, uint8_t **out, size_t *len)
{
    Etcdserverpb__MoveLeaderRequest req = ETCDSERVERPB__MOVE_LEADER_REQUEST__INIT;
    req.targetid = target_id;
    return pack(&req.base, out, len);
}

int proto_encode_hashkv(int64_t revision, uint8_t **out, size_t *len)
{
    Etcdserverpb__HashKVRequest req = ETCDSERVERPB__HASH_KVREQUEST__INIT;
    req.revision = revision;
    return pack(&req.base, out, len);
}

int proto_encode_compact(int64_t revision, bool physical, uint8_t **out, size_t *len)
{
    Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    req.revision = revision;
    req.physical = physical;
    return pack(&req.base, out, len);
}

/* ---- responses ------------------------------------------------------------------------------ */

static void copy_header(const Etcdserverpb__ResponseHeader *h, struct etcd_header *out)
{
    memset(out, 0, sizeof(*out));
    if (!h)
        return;
    out->cluster_id = h->cluster_id;
    out->member_id = h->member_id;
    out->revision = h->revision;
    out->raft_term = h->raft_term;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int copy_strings(char *const *src, size_t n, char ***dst, size_t *n_dst)
{
    *dst = NULL;
    *n_dst = 0;
    if (n == 0)
        return 0;
    char **v = proto_calloc(n, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = proto_strdup(src[i] ? src[i] : "");
        if (!v[i]) {
            free_strings(v, i);
            return -ENOMEM;
        }
    }
    *dst = v;
    *n_dst = n;
    return 0;
}

void proto_member_free(struct etcd_member *m)
{
    if (!m)
        return;
    free(m->name);
    free_strings(m->peer_urls, m->n_peer_urls);
    free_strings(m->client_urls, m->n_client_urls);
    memset(m, 0, sizeof(*m));
}

void proto_member_list_free(struct etcd_member_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_members; i++)
        proto_member_free(&l->members[i]);
    free(l->members);
    memset(l, 0, sizeof(*l));
}

void proto_status_free(struct etcd_status *s)
{
    if (!s)
        return;
    free_strings(s->errors, s->n_errors);
    memset(s, 0, sizeof(*s));
}

static int copy_member(const Etcdserverpb__Member *src, struct etcd_member *dst)
{
    int rc;

    memset(dst, 0, sizeof(*dst));
    dst->id = src->id;
    dst->is_learner = src->islearner;
    dst->name = proto_strdup(src->name ? src->name : "");
    if (!dst->name) {
        rc = -ENOMEM;
        goto out;
    }
    rc = copy_strings(src->peerurls, src->n_peerurls, &dst->peer_urls, &dst->n_peer_urls);
    if (rc)
        goto out;
    rc = copy_strings(src->clienturls, src->n_clienturls, &dst->client_urls, &dst->n_client_urls);
out:
    if (rc)
        proto_member_free(dst);
    return rc;
}

static int copy_members(const Etcdserverpb__ResponseHeader *h, Etcdserverpb__Member *const *src,
                        size_t n, struct etcd_member_list *out)
{
    int rc = 0;

    memset(out, 0, sizeof(*out));
    copy_header(h, &out->header);
    if (n == 0)
        return 0;
    out->members = proto_calloc(n, sizeof(*out->members));
    if (!out->members)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rc = copy_member(src[i], &out->members[i]);
        if (rc)
            break;
        out->n_members = i + 1;
    }
    if (rc)
        proto_member_list_free(out);
    return rc;
}

int proto_decode_members(enum proto_members_kind kind, const uint8_t *buf, size_t len,
                         struct etcd_member_list *out)
{
    const ProtobufCMessageDescriptor *desc;
    struct decoder d;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    switch (kind) {
    case PROTO_MEMBER_LIST_RESPONSE:
        desc = &etcdserverpb__member_list_response__descriptor;
        break;
    case PROTO_MEMBER_REMOVE_RESPONSE:
        desc = &etcdserverpb__member_remove_response__descriptor;
        break;
    case PROTO_MEMBER_PROMOTE_RESPONSE:
        desc = &etcdserverpb__member_promote_response__descriptor;
        break;
    default:
        return -EINVAL;
    }
    decoder_init(&d);
    ProtobufCMessage *m = decoder_unpack(&d, desc, buf, len, &rc);
    if (!m)
        goto out;
    switch (kind) {
    case PROTO_MEMBER_LIST_RESPONSE: {
        const Etcdserverpb__MemberListResponse *r = (const Etcdserverpb__MemberListResponse *)m;
        rc = copy_members(r->header, r->members, r->n_members, out);
        break;
    }
    case PROTO_MEMBER_REMOVE_RESPONSE: {
        const Etcdserverpb__MemberRemoveResponse *r = (const Etcdserverpb__MemberRemoveResponse *)m;
        rc = copy_members(r->header, r->members, r->n_members, out);
        break;
    }
    case PROTO_MEMBER_PROMOTE_RESPONSE: {
        const Etcdserverpb__MemberPromoteResponse *r =
            (const Etcdserverpb__MemberPromoteResponse *)m;
        rc = copy_members(r->header, r->members, r->n_members, out);
        break;
    }
    }
out:
    decoder_release(&d, m);
    return rc;
}

int proto_decode_member_add(const uint8_t *buf, size_t len, struct etcd_member *added,
                            struct etcd_member_list *members)
{
    struct decoder d;
    int rc = 0;

    memset(added, 0, sizeof(*added));
    if (members)
        memset(members, 0, sizeof(*members));
    decoder_init(&d);
    Etcdserverpb__MemberAddResponse *r = (Etcdserverpb__MemberAddResponse *)decoder_unpack(
        &d, &etcdserverpb__member_add_response__descriptor, buf, len, &rc);
    if (!r)
        goto out;
    if (!r->member) {
        rc = -EBADMSG;
        goto out;
    }
    rc = copy_member(r->member, added);
    if (rc || !members)
        goto out;
    rc = copy_members(r->header, r->members, r->n_members, members);
    if (rc)
        proto_member_free(added);
out:
    decoder_release(&d, r ? &r->base : NULL);
    return rc;
}

int proto_decode_status(const uint8_t *buf, size_t len, struct etcd_status *out)
{
    struct decoder d;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    decoder_init(&d);
    Etcdserverpb__StatusResponse *r = (Etcdserverpb__StatusResponse *)decoder_unpack(
        &d, &etcdserverpb__status_response__descriptor, buf, len, &rc);
    if (!r)
        goto out;
    copy_header(r->header, &out->header);
    /* informative only: a longer version string than any etcd release is cut, not refused */
    snprintf(out->version, sizeof(out->version), "%s", r->version ? r->version : "");
    out->db_size = r->dbsize;
    out->db_size_in_use = r->dbsizeinuse;
    out->leader = r->leader;
    out->raft_index = r->raftindex;
    out->raft_term = r->raftterm;
    out->raft_applied_index = r->raftappliedindex;
    out->is_learner = r->islearner;
    out->db_size_quota = r->dbsizequota;
    rc = copy_strings(r->errors, r->n_errors, &out->errors, &out->n_errors);
    if (rc)
        proto_status_free(out);
out:
    decoder_release(&d, r ? &r->base : NULL);
    return rc;
}

int proto_decode_alarms(const uint8_t *buf, size_t len, struct etcd_header *header,
                        struct etcd_alarm **alarms, size_t *n_alarms)
{
    struct decoder d;
    int rc = 0;

    if (header)
        memset(header, 0, sizeof(*header));
    *alarms = NULL;
    *n_alarms = 0;
    decoder_init(&d);
    Etcdserverpb__AlarmResponse *r = (Etcdserverpb__AlarmResponse *)decoder_unpack(
        &d, &etcdserverpb__alarm_response__descriptor, buf, len, &rc);
    if (!r)
        goto out;
    if (r->n_alarms) {
        struct etcd_alarm *v = proto_calloc(r->n_alarms, sizeof(*v));
        if (!v) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < r->n_alarms; i++) {
            v[i].member_id = r->alarms[i]->memberid;
            v[i].type = (int)r->alarms[i]->alarm;
        }
        *alarms = v;
        *n_alarms = r->n_alarms;
    }
    if (header)
        copy_header(r->header, header);
out:
    decoder_release(&d, r ? &r->base : NULL);
    return rc;
}

int proto_decode_range(const uint8_t *buf, size_t len, struct etcd_header *header, int64_t *count)
{
    struct decoder d;
    int rc = 0;

    if (header)
        memset(header, 0, sizeof(*header));
    if (count)
        *count = 0;
    decoder_init(&d);
    Etcdserverpb__RangeResponse *r = (Etcdserverpb__RangeResponse *)decoder_unpack(
        &d, &etcdserverpb__range_response__descriptor, buf, len, &rc);
    if (!r)
        goto out;
    if (header)
        copy_header(r->header, header);
    if (count)
        *count = r->count;
out:
    decoder_release(&d, r ? &r->base : NULL);
    return rc;
}

int proto_decode_put(const uint8_t *buf, size_t len, struct etcd_header *header)
{
    struct decoder d;
    int rc = 0;

    if (header)
        memset(header, 0, sizeof(*header));
    decoder_init(&d);
    Etcdserverpb__PutResponse *r = (Etcdserverpb__PutResponse *)decoder_unpack(
        &d, &etcdserverpb__put_response__descriptor, buf, len, &rc);
    if (r && header)
        copy_header(r->header, header);
    decoder_release(&d, r ? &r->base : NULL);
    return rc;
}

int proto_decode_header_only(const uint8_t *buf, size_t len, struct etcd_header *header)
{
    /* Defragment, MoveLeader and Compaction responses are {header 1}: decode as one of them. */
    struct decoder d;
    int rc = 0;

    if (header)
        memset(header, 0, sizeof(*header));
    decoder_init(&d);
    Etcdserverpb__DefragmentResponse *r = (Etcdserverpb__DefragmentResponse *)decoder_unpack(
        &d, &etcdserverpb__defragment_response__descriptor, buf, len, &rc);
    if (r && header)
        copy_header(r->header, header);
    decoder_release(&d, r ? &r->base : NULL);
    return rc;
}

int proto_decode_hashkv(const uint8_t *buf, size_t len, struct etcd_header *header, uint32_t *hash,
                        int64_t *compact_revision)
{
    struct decoder d;
    int rc = 0;

    if (header)
        memset(header, 0, sizeof(*header));
    *hash = 0;
    *compact_revision = 0;
    decoder_init(&d);
    Etcdserverpb__HashKVResponse *r = (Etcdserverpb__HashKVResponse *)decoder_unpack(
        &d, &etcdserverpb__hash_kvresponse__descriptor, buf, len, &rc);
    if (r) {
        if (header)
            copy_header(r->header, header);
        *hash = r->hash;
        *compact_revision = r->compact_revision;
    }
    decoder_release(&d, r ? &r->base : NULL);
    return rc;
}

/* ---- snapshot stream ---------------------------------------------------------------------- */

#define SHA256_LEN 32

static int snap_fail(struct proto_snapshot *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int snap_fail(struct proto_snapshot *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    s->code = code;
    return code;
}

int proto_snapshot_init(struct proto_snapshot *s, etcd_snapshot_fn on_data, void *arg)
{
    memset(s, 0, sizeof(*s));
    s->on_data = on_data;
    s->arg = arg;
    s->md = EVP_MD_CTX_new();
    if (!s->md)
        return -ENOMEM;
    if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(s->md);
        s->md = NULL;
        return -ENOMEM;
    }
    return 0;
}

void proto_snapshot_free(struct proto_snapshot *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->md);
    s->md = NULL;
}

/* One data message: counts, checks remaining_bytes against the announced size, hashes and
 * hands over the blob. */
static int snap_data(struct proto_snapshot *s, uint64_t remaining, const uint8_t *blob, size_t len)
{
    if (len > s->total - s->received)
        return snap_fail(s, GRPC_DATA_LOSS,
                         "snapshot: stream longer than the announced %" PRIu64 " bytes", s->total);
    s->received += len;
    if (remaining != s->total - s->received)
        return snap_fail(s, GRPC_DATA_LOSS,
                         "snapshot: remaining_bytes %" PRIu64 " after %" PRIu64
                         " bytes, expected %" PRIu64,
                         remaining, s->received, s->total - s->received);
    if (len == 0)
        return 0;
    if (EVP_DigestUpdate(s->md, blob, len) != 1)
        return snap_fail(s, GRPC_INTERNAL, "snapshot: sha256 update failed");
    if (s->on_data && s->on_data(s->arg, s->total, blob, len) != 0)
        return snap_fail(s, GRPC_CANCELLED,
                         "snapshot: cancelled by the receiver after %" PRIu64 " of %" PRIu64
                         " bytes",
                         s->received, s->total);
    return 0;
}

/* Snapshot messages are parsed in place: protobuf-c would copy every 32 KiB blob into a fresh
 * allocation before the digest and the receiver read it once. Same acceptance as
 * protobuf_c_message_unpack of SnapshotResponse (tests/unit/test_proto.c compares both). */
int proto_snapshot_parse(const uint8_t *msg, size_t len, uint64_t *remaining, const uint8_t **blob,
                         size_t *blob_len)
{
    size_t at = 0;
    *remaining = 0;
    *blob = NULL;
    *blob_len = 0;
    while (at < len) {
        uint64_t v;
        /* the key as protobuf-c reads it: at most 5 bytes, 32-bit tag, and a first byte whose
         * tag bits are 0 is invalid */
        if ((msg[at] & 0xf8) == 0)
            return -EBADMSG;
        unsigned wt = msg[at] & 7;
        uint32_t field = (uint32_t)(msg[at] & 0x7f) >> 3;
        if (msg[at++] & 0x80) {
            unsigned shift = 4, k = 1;
            for (;; k++, at++) {
                if (k == 5 || at >= len)
                    return -EBADMSG;
                field |= (uint32_t)(msg[at] & 0x7f) << shift;
                shift += 7;
                if (!(msg[at] & 0x80)) {
                    at++;
                    break;
                }
            }
        }
        bool known = field >= 1 && field <= 4;
        switch (wt) {
        case PB_VARINT: /* varint: only remaining_bytes (2) may be one */
            if (pb_varint(msg, len, &at, &v) < 0 || (known && field != 2))
                return -EBADMSG;
            if (field == 2)
                *remaining = v;
            break;
        case PB_FIXED64:
        case PB_FIXED32: {
            size_t w = wt == PB_FIXED64 ? 8 : 4;
            if (known || len - at < w)
                return -EBADMSG;
            at += w;
            break;
        }
        case PB_LEN: { /* length-delimited: header (1), blob (3), version (4) */
            size_t start = at;
            if (pb_varint(msg, len, &at, &v) < 0 || at - start > 5 || v > INT32_MAX ||
                v > len - at || field == 2)
                return -EBADMSG;
            if (field == 3) {
                *blob = msg + at;
                *blob_len = (size_t)v;
            } else if (field == 1) {
                /* never set by etcd; validated as protobuf-c would */
                struct decoder d;
                int rc = 0;
                decoder_init(&d);
                ProtobufCMessage *h = decoder_unpack(&d, &etcdserverpb__response_header__descriptor,
                                                     msg + at, (size_t)v, &rc);
                if (!h)
                    return rc;
                decoder_release(&d, h);
            }
            at += (size_t)v;
            break;
        }
        default: /* groups (3, 4) and invalid types */
            return -EBADMSG;
        }
    }
    return 0;
}

int proto_snapshot_feed(void *arg, const uint8_t *msg, size_t len)
{
    struct proto_snapshot *s = arg;
    uint64_t remaining = 0;
    const uint8_t *blob = NULL;
    size_t blen = 0;
    int rc = 0;

    if (s->code)
        return s->code;
    rc = proto_snapshot_parse(msg, len, &remaining, &blob, &blen);
    if (rc < 0) {
        rc =
            rc == -ENOMEM
                ? snap_fail(s, GRPC_RESOURCE_EXHAUSTED,
                            "snapshot: out of memory decoding message %" PRIu64, s->messages + 1)
                : snap_fail(s, GRPC_INTERNAL,
                            "snapshot: malformed SnapshotResponse (message %" PRIu64 ", %zu bytes)",
                            s->messages + 1, len);
        goto out;
    }
    s->messages++;
    if (s->have_digest) {
        rc = snap_fail(s, GRPC_DATA_LOSS, "snapshot: data after the sha256 digest");
        goto out;
    }
    if (!s->started) {
        if (remaining > UINT64_MAX - blen) {
            rc = snap_fail(s, GRPC_DATA_LOSS, "snapshot: announced size overflows");
            goto out;
        }
        s->total = remaining + blen;
        s->started = true;
    } else if (s->received == s->total) {
        /* all data is in: this must be the digest */
        if (remaining != 0 || blen != SHA256_LEN) {
            rc = snap_fail(s, GRPC_DATA_LOSS,
                           "snapshot: %zu bytes beyond the announced %" PRIu64
                           " bytes where the 32-byte sha256 was expected",
                           blen, s->total);
            goto out;
        }
        memcpy(s->digest, blob, SHA256_LEN);
        s->have_digest = true;
        goto out;
    }
    rc = snap_data(s, remaining, blob, blen);
out:
    return rc;
}

int proto_snapshot_finish(struct proto_snapshot *s, uint8_t digest_out[32])
{
    uint8_t mine[EVP_MAX_MD_SIZE];
    unsigned mine_len = 0;
    char a[17], b[17];

    if (s->code)
        return s->code;
    if (!s->started)
        return snap_fail(s, GRPC_DATA_LOSS, "snapshot: empty stream");
    if (s->received < s->total)
        return snap_fail(s, GRPC_DATA_LOSS,
                         "snapshot: short stream: %" PRIu64 " of %" PRIu64 " bytes", s->received,
                         s->total);
    if (!s->have_digest)
        return snap_fail(s, GRPC_DATA_LOSS,
                         "snapshot: missing sha256 digest after %" PRIu64 " bytes", s->total);
    if (EVP_DigestFinal_ex(s->md, mine, &mine_len) != 1 || mine_len != SHA256_LEN)
        return snap_fail(s, GRPC_INTERNAL, "snapshot: sha256 final failed");
    if (CRYPTO_memcmp(mine, s->digest, SHA256_LEN) != 0) {
        hex_encode(s->digest, 8, a);
        hex_encode(mine, 8, b);
        return snap_fail(s, GRPC_DATA_LOSS,
                         "snapshot: sha256 mismatch over %" PRIu64
                         " bytes: server %s..., computed %s...",
                         s->total, a, b);
    }
    if (digest_out)
        memcpy(digest_out, s->digest, SHA256_LEN);
    return GRPC_OK;
}
