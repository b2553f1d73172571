/* etcd.h - typed etcd v3 calls over a grpc_channel.
 *
 * Each call encodes its request with protobuf-c (etcd.proto), makes one gRPC call and decodes
 * the response into plain structs the caller owns (free with the matching *_free). No call is
 * retried here: callers decide (membership changes must not be blindly repeated).
 * The snapshot call also understands etcd's stream protocol: size from the first message,
 * data blobs, then a 32-byte sha256 of all data which it verifies. */
#ifndef ER_ETCD_H
#define ER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc.h"

struct etcd_header {
    uint64_t cluster_id;
    uint64_t member_id; /* the member that answered */
    int64_t revision;
    uint64_t raft_term;
};

struct etcd_member {
    uint64_t id;
    char *name;       /* "" for a member added but never started */
    char **peer_urls; /* n_peer_urls strings */
    size_t n_peer_urls;
    char **client_urls; /* empty for a member never started */
    size_t n_client_urls;
    bool is_learner;
};

struct etcd_member_list {
    struct etcd_header header;
    struct etcd_member *members;
    size_t n_members;
};

/* Each call: timeout_ms is the call deadline; st receives the outcome; returns st->code
 * (GRPC_OK == 0 on success). Outputs are zeroed first and left empty on failure. */

int etcd_member_list(struct grpc_channel *ch, int timeout_ms, struct etcd_member_list *out,
                     struct grpc_status *st);

/* Adds a member with these peer URLs. `added` (required) receives the new member (its ID);
 * `members` (optional, may be NULL) the membership after the change. */
int etcd_member_add(struct grpc_channel *ch, const char *const *peer_urls, size_t n_peer_urls,
                    bool is_learner, int timeout_ms, struct etcd_member *added,
                    struct etcd_member_list *members, struct grpc_status *st);
/* members (optional) receives the membership after the change. */
int etcd_member_remove(struct grpc_channel *ch, uint64_t id, int timeout_ms,
                       struct etcd_member_list *members, struct grpc_status *st);
int etcd_member_promote(struct grpc_channel *ch, uint64_t id, int timeout_ms,
                        struct etcd_member_list *members, struct grpc_status *st);

struct etcd_status {
    struct etcd_header header;
    char version[32];
    int64_t db_size;
    int64_t db_size_in_use;
    uint64_t leader; /* 0: no leader */
    uint64_t raft_index;
    uint64_t raft_term;
    uint64_t raft_applied_index;
    bool is_learner;
    int64_t db_size_quota; /* 3.6 (field 12); 0 from older servers */
    char **errors;
    size_t n_errors;
};
int etcd_status(struct grpc_channel *ch, int timeout_ms, struct etcd_status *out,
                struct grpc_status *st);

enum etcd_alarm_type { ETCD_ALARM_NONE = 0, ETCD_ALARM_NOSPACE = 1, ETCD_ALARM_CORRUPT = 2 };
struct etcd_alarm {
    uint64_t member_id;
    int type; /* enum etcd_alarm_type (other values possible from newer servers) */
};
/* Alarm GET for all members. *alarms is malloc'd (NULL when none). header may be NULL (etcd
 * 3.4 sends no header here: it is left zeroed). */
int etcd_alarm_list(struct grpc_channel *ch, int timeout_ms, struct etcd_header *header,
                    struct etcd_alarm **alarms, size_t *n_alarms, struct grpc_status *st);
const char *etcd_alarm_name(int type); /* "NONE", "NOSPACE", "CORRUPT", "UNKNOWN" */

/* Serializable (local, no quorum) range of one key, count only. Proves the member serves
 * reads. header and count may be NULL. */
int etcd_range_serializable(struct grpc_channel *ch, const char *key, int timeout_ms,
                            struct etcd_header *header, int64_t *count, struct grpc_status *st);

/* Put one key (tests, demo and bench data). */
int etcd_put(struct grpc_channel *ch, const char *key, const uint8_t *value, size_t value_len,
             int timeout_ms, struct grpc_status *st);

/* Snapshot stream. on_data gets every data blob in order with total_size (the db size, known
 * from the first message); it returns 0 to go on, non-zero to cancel. After the last data byte
 * the server's sha256 arrives; etcd_snapshot compares it with the sha256 it computed over the
 * data and, on match, copies it to digest_out (may be NULL). Returns GRPC_OK only for a
 * complete, verified stream; GRPC_DATA_LOSS for a digest mismatch, a short or overlong stream,
 * or a missing digest; other codes as for any call. idle_timeout_ms bounds gaps. */
typedef int (*etcd_snapshot_fn)(void *arg, uint64_t total_size, const uint8_t *blob, size_t len);
int etcd_snapshot(struct grpc_channel *ch, int timeout_ms, int idle_timeout_ms,
                  etcd_snapshot_fn on_data, void *arg, uint8_t digest_out[32],
                  struct grpc_status *st);

/* ---- maintenance (agent/maint.c) ---- */

/* Maintenance.Defragment on the member ch reaches (one member per call; it blocks that
 * member's reads and writes for its duration). */
int etcd_defragment(struct grpc_channel *ch, int timeout_ms, struct grpc_status *st);
/* Maintenance.MoveLeader: ch must reach the leader; target must be a voter. */
int etcd_move_leader(struct grpc_channel *ch, uint64_t target_id, int timeout_ms,
                     struct grpc_status *st);
/* Maintenance.HashKV at revision (0: the member's current one). header may be NULL. */
int etcd_hashkv(struct grpc_channel *ch, int64_t revision, int timeout_ms,
                struct etcd_header *header, uint32_t *hash, int64_t *compact_revision,
                struct grpc_status *st);
/* KV.Compact to revision; physical: wait until the compaction is applied to the backend. */
int etcd_compact(struct grpc_channel *ch, int64_t revision, bool physical, int timeout_ms,
                 struct grpc_status *st);
/* Maintenance.Alarm DEACTIVATE of `type` raised by member_id (0: every member). */
int etcd_alarm_deactivate(struct grpc_channel *ch, uint64_t member_id, int type, int timeout_ms,
                          struct grpc_status *st);

/* The value of `etcd_server_quota_backend_bytes` in a Prometheus text page (etcd's /metrics).
 * Pure. Returns 0 with *quota set, -ENOENT if the metric is absent, -EINVAL if malformed. */
int etcd_metrics_quota(const char *text, size_t len, int64_t *quota);

void etcd_member_free(struct etcd_member *m);
void etcd_member_list_free(struct etcd_member_list *l);
void etcd_status_free(struct etcd_status *s);

/* Member ID as etcdctl prints it: lowercase hex, no padding. Returns out. */
const char *etcd_id_hex(uint64_t id, char out[17]);

#endif
