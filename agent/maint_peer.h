/* maint_peer.h - the coordinator's HashKV verdict shared with the other agents: GET /hashkv on
 * every agent answers its last check (raw hashes, compact revisions, the revision R), and a
 * follower's agent reads the leader's agent's answer to learn whether its own member is divergent.
 *
 * Rendering and parsing are pure (table-tested in tests/unit/test_maint_peer.c, fuzzed by
 * tests/fuzz/fuzz_maint_peer.c); fetching it and writing the marker is maint.c's (its thread). */
#ifndef ER_AGENT_MAINT_PEER_H
#define ER_AGENT_MAINT_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

#include "cache.h"
#include "maint_plan.h"

struct maint_peer_verdict {
    uint64_t member_id;  /* the answering agent's member (never 0) */
    uint64_t cluster_id; /* its cluster (never 0) */
    bool coordinator;    /* it coordinates (its member is the leader) */
    char verdict[32];    /* its verdict name ("" never checked) */
    int64_t revision;    /* R of the last check (0: never checked) */
    int64_t age_ms;      /* how long ago (-1: never) */
    size_t n_members;    /* cluster size when it checked (>= n) */
    struct maint_plan_hash h[MAINT_PLAN_MAX_MEMBERS];
    size_t n;
};

/* The verdict of the agent holding snapshot s as JSON (malloc'd, NUL-terminated, *len bytes
 * without the NUL). 0, -ENOMEM, or -EAGAIN when the local member never answered Status. */
int maint_peer_render(const struct cache_snapshot *s, int64_t now_ms, char **out, size_t *len);

/* Strict: every key of the rendered form, IDs as non-zero hex strings, numbers in range, at
 * most MAINT_PLAN_MAX_MEMBERS members with distinct IDs, at most MAINT_PEER_MAX_BYTES. 0 or
 * -EINVAL. */
int maint_peer_parse(const char *buf, size_t len, struct maint_peer_verdict *v);

/* What the local member's marker should do after reading the leader's agent's verdict v:
 * accepted only from the coordinator of our cluster that our member sees as leader, for a
 * check at R > 0; the hashes are compared again here (maint_plan_hash_compare, majority of
 * max(v->n_members, local_members)), and a WRITE also needs the leader's own verdict to be
 * "divergent member" (an inconsistent cluster names nobody). *why says which rule decided
 * (static). */
enum maint_marker_action maint_peer_decide(const struct maint_peer_verdict *v, uint64_t self,
                                           uint64_t cluster_id, uint64_t leader,
                                           size_t local_members, uint32_t *majority_hash,
                                           uint32_t *own_hash, const char **why);

/* The leader's agent URL: scheme and port of our own agent (every pod of the StatefulSet
 * listens alike), host of the leader member's first client URL ("https://h:2379" -> "h",
 * "[::1]" kept bracketed). 0, -EINVAL (no host in client_url) or -ENAMETOOLONG. */
int maint_peer_url(const char *client_url, const char *scheme, const char *port, char *out,
                   size_t out_len);

/* The port part of an "ADDR:PORT" listen flag into out. 0 or -EINVAL. */
int maint_peer_listen_port(const char *listen, char *out, size_t out_len);

#endif
