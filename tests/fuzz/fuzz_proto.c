/* fuzz_proto.c - libFuzzer target for every etcd response this project decodes, through the
 * same proto.c functions etcd.c calls: MemberList/Add/Remove/Promote, Status, Alarm, Range, Put,
 * the Snapshot stream checker, and the in-place SnapshotResponse parser against protobuf-c. The
 * first byte picks the decoder; for the snapshot stream the rest is cut into messages by 2-byte
 * big-endian length prefixes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.pb-c.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    uint64_t *seen = arg;
    (void)blob;
    /* the checker must never hand out more than it announced */
    if (len == 0 || *seen + len > total)
        abort();
    *seen += len;
    /* touch both ends so ASan checks the blob is really len readable bytes */
    volatile uint8_t ends = blob[0] ^ blob[len - 1];
    (void)ends;
    return 0;
}

/* The in-place SnapshotResponse parser must agree with protobuf-c on every input. */
static void fuzz_snapshot_parse(const uint8_t *p, size_t n)
{
    static const uint8_t empty[1];
    uint64_t rem = 0;
    const uint8_t *blob = NULL;
    size_t blen = 0;
    int rc = proto_snapshot_parse(p, n, &rem, &blob, &blen);
    Etcdserverpb__SnapshotResponse *r =
        etcdserverpb__snapshot_response__unpack(NULL, n, n ? p : empty);
    if (!r) {
        if (rc == 0)
            abort();
        return;
    }
    if (rc != 0 || rem != r->remaining_bytes || blen != r->blob.len ||
        (blen && memcmp(blob, r->blob.data, blen) != 0))
        abort();
    etcdserverpb__snapshot_response__free_unpacked(r, NULL);
}

static void fuzz_snapshot(const uint8_t *p, size_t n)
{
    struct proto_snapshot s;
    uint64_t seen = 0;
    int rc = 0;

    if (proto_snapshot_init(&s, sink, &seen) != 0)
        return;
    while (rc == 0 && n >= 2) {
        size_t len = (size_t)p[0] << 8 | p[1];
        p += 2;
        n -= 2;
        if (len > n)
            len = n;
        rc = proto_snapshot_feed(&s, p, len);
        p += len;
        n -= len;
    }
    uint8_t digest[32];
    rc = proto_snapshot_finish(&s, digest);
    if (rc == GRPC_OK && (seen != s.total || !s.have_digest))
        abort();
    proto_snapshot_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct etcd_member_list l;
    struct etcd_member m;
    struct etcd_status st;
    struct etcd_header h;
    struct etcd_alarm *a;
    size_t na;
    int64_t count;

    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 10) {
    case 0:
        if (proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, p, n, &l) == 0)
            proto_member_list_free(&l);
        break;
    case 1:
        if (proto_decode_members(PROTO_MEMBER_REMOVE_RESPONSE, p, n, &l) == 0)
            proto_member_list_free(&l);
        break;
    case 2:
        if (proto_decode_members(PROTO_MEMBER_PROMOTE_RESPONSE, p, n, &l) == 0)
            proto_member_list_free(&l);
        break;
    case 3:
        if (proto_decode_member_add(p, n, &m, &l) == 0) {
            proto_member_free(&m);
            proto_member_list_free(&l);
        }
        break;
    case 4:
        if (proto_decode_status(p, n, &st) == 0)
            proto_status_free(&st);
        break;
    case 5:
        if (proto_decode_alarms(p, n, &h, &a, &na) == 0)
            free(a);
        break;
    case 6:
        (void)proto_decode_range(p, n, &h, &count);
        break;
    case 7:
        (void)proto_decode_put(p, n, &h);
        break;
    case 8:
        fuzz_snapshot_parse(p, n);
        break;
    default:
        fuzz_snapshot(p, n);
        break;
    }
    return 0;
}
