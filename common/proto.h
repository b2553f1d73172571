/* proto.h - the wire side of etcd.h's calls: protobuf-c encoding of requests, decoding of
 * responses into etcd.h's owned structs, and the checker of etcd's snapshot stream.
 *
 * No I/O here: etcd.c sends what these functions encode through grpc.c. Kept apart so that the
 * unit tests and the fuzzers exercise exactly the code the calls use, without a network.
 * Decoding is bounded: one response may use at most PROTO_MAX_DECODE_ALLOC bytes of heap while
 * it is unpacked. Every allocation of this module goes through malloc/calloc (test_proto wraps
 * them at link time to make the Nth one fail). */
#ifndef ER_PROTO_H
#define ER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "etcd.h"
#include "bounds.h"

/* ---- allocation ------------------------------------------------------------------------ */

void *proto_malloc(size_t n);
void *proto_calloc(size_t n, size_t size);
char *proto_strdup(const char *s);

/* ---- requests ----------------------------------------------------------------------------
 * Each encoder returns 0 with *out malloc'd (free with free(); may be NULL when *len is 0, the
 * empty message), -EINVAL for a bad argument (NULL strings, too many URLs, a request over
 * ETCD_MAX_REQUEST) or -ENOMEM. */

int proto_encode_member_list(uint8_t **out, size_t *len);
int proto_encode_member_add(const char *const *peer_urls, size_t n_peer_urls, bool is_learner,
                            uint8_t **out, size_t *len);
int proto_encode_member_remove(uint64_t id, uint8_t **out, size_t *len);
int proto_encode_member_promote(uint64_t id, uint8_t **out, size_t *len);
int proto_encode_status(uint8_t **out, size_t *len);
/* AlarmRequest{action GET, memberID 0 (all), alarm NONE} */
int proto_encode_alarm_get(uint8_t **out, size_t *len);
/* RangeRequest{key, serializable, count_only} */
int proto_encode_range_serializable(const char *key, uint8_t **out, size_t *len);
int proto_encode_put(const char *key, const uint8_t *value, size_t value_len, uint8_t **out,
                     size_t *len);
int proto_encode_snapshot(uint8_t **out, size_t *len);
/* Maintenance requests. action: 0 GET, 1 ACTIVATE, 2 DEACTIVATE; alarm: 0..2 (else -EINVAL). */
int proto_encode_alarm(int action, uint64_t member_id, int alarm, uint8_t **out, size_t *len);
int proto_encode_defragment(uint8_t **out, size_t *len);
int proto_encode_move_leader(uint64_t target_id, uint8_t **out, size_t *len);
int proto_encode_hashkv(int64_t revision, uint8_t **out, size_t *len);
int proto_encode_compact(int64_t revision, bool physical, uint8_t **out, size_t *len);

/* ---- responses ---------------------------------------------------------------------------
 * Each decoder zeroes its outputs first and returns 0, -EBADMSG (not a valid message of that
 * type) or -ENOMEM (out of memory, or the message would need more than PROTO_MAX_DECODE_ALLOC).
 * On failure the outputs are left empty; nothing leaks. Unknown fields are skipped. */

/* The three responses shaped {header 1, members 2}. */
enum proto_members_kind {
    PROTO_MEMBER_LIST_RESPONSE,
    PROTO_MEMBER_REMOVE_RESPONSE,
    PROTO_MEMBER_PROMOTE_RESPONSE,
};
int proto_decode_members(enum proto_members_kind kind, const uint8_t *buf, size_t len,
                         struct etcd_member_list *out);
/* added is required (-EBADMSG if the response has no member); members may be NULL. */
int proto_decode_member_add(const uint8_t *buf, size_t len, struct etcd_member *added,
                            struct etcd_member_list *members);
/* A version longer than etcd_status.version is truncated. */
int proto_decode_status(const uint8_t *buf, size_t len, struct etcd_status *out);
/* *alarms malloc'd, NULL when none. header may be NULL. */
int proto_decode_alarms(const uint8_t *buf, size_t len, struct etcd_header *header,
                        struct etcd_alarm **alarms, size_t *n_alarms);
/* header and count may be NULL. */
int proto_decode_range(const uint8_t *buf, size_t len, struct etcd_header *header, int64_t *count);
int proto_decode_put(const uint8_t *buf, size_t len, struct etcd_header *header);
/* Responses that are only {header 1}: Defragment, MoveLeader, Compaction. */
int proto_decode_header_only(const uint8_t *buf, size_t len, struct etcd_header *header);
int proto_decode_hashkv(const uint8_t *buf, size_t len, struct etcd_header *header, uint32_t *hash,
                        int64_t *compact_revision);

/* Free what the decoders made; the structs are zeroed. etcd.h's etcd_*_free call these. */
void proto_member_free(struct etcd_member *m);
void proto_member_list_free(struct etcd_member_list *l);
void proto_status_free(struct etcd_status *s);

/* ---- snapshot stream ---------------------------------------------------------------------
 * etcd's Maintenance.Snapshot sends data blobs whose remaining_bytes count down to 0 (so the
 * first message gives total = remaining_bytes + len(blob)), then one more message with
 * remaining_bytes 0 whose blob is the sha256 of all data. The checker is fed each response
 * message as it arrives (nothing is buffered), hands data to on_data and hashes it. */
struct proto_snapshot {
    EVP_MD_CTX *md;
    etcd_snapshot_fn on_data;
    void *arg;
    uint64_t total;    /* announced db size (valid once started) */
    uint64_t received; /* data bytes so far */
    uint64_t messages;
    bool started, have_digest;
    uint8_t digest[32]; /* the server's */
    int code;           /* 0, or the grpc code of the failure that stopped the stream */
    char err[GRPC_MAX_STATUS_MESSAGE];
};

/* Returns 0 or -ENOMEM. */
int proto_snapshot_init(struct proto_snapshot *s, etcd_snapshot_fn on_data, void *arg);
/* SnapshotResponse parsed in place: remaining_bytes and the blob (pointing into msg). 0, or
 * -EBADMSG / -ENOMEM where protobuf_c_message_unpack would fail. Exposed for tests. */
int proto_snapshot_parse(const uint8_t *msg, size_t len, uint64_t *remaining, const uint8_t **blob,
                         size_t *blob_len);
/* One response message. Returns 0 to go on; otherwise s->code is set (GRPC_DATA_LOSS for a
 * stream that breaks the protocol, GRPC_INTERNAL for an undecodable message,
 * GRPC_RESOURCE_EXHAUSTED, GRPC_CANCELLED when on_data asked to stop), s->err says why, and the
 * stream must be cancelled. Fits grpc_message_fn. */
int proto_snapshot_feed(void *arg, const uint8_t *msg, size_t len);
/* After the stream ended with GRPC_OK: GRPC_OK if all announced data and a matching digest
 * arrived (digest copied to digest_out, which may be NULL); else GRPC_DATA_LOSS with s->err. */
int proto_snapshot_finish(struct proto_snapshot *s, uint8_t digest_out[32]);
void proto_snapshot_free(struct proto_snapshot *s);

#endif
