/* act.h - carries out reset-member's decision: membership changes, moving the data dir aside,
 * the state and env files, pruning old moved-aside copies.
 *
 * Steps run in an order that leaves, after a kill -9 at any point, a state from which the
 * next run decides correctly (see act.c). What to do is decide.c's; facts are observe.c's. */
#ifndef ER_ACT_H
#define ER_ACT_H

#include <linux/limits.h> /* PATH_MAX; <limits.h> is shadowed by common/limits.h */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "decide.h"
#include "etcd.h"
#include "grpc.h"

#define ACT_MEMBER_ATTEMPTS 7  /* tries per membership change */
#define ACT_RETRY_DELAY_MS 500 /* first pause between two tries; doubles */
#define ACT_RETRY_DELAY_MAX_MS                                                                     \
    2000                             /* etcd refuses MemberAdd ("unhealthy cluster") until every   \
                                      * voter has been connected for 5 s: outlast that */
#define ACT_MAX_BACKUP_SCAN 1024     /* directory entries looked at when pruning */
#define ACT_MAX_INITIAL_CLUSTER 8192 /* rendered ETCD_INITIAL_CLUSTER */
#define ACT_MAX_FILE 16384           /* state/env file contents */

/* Test-only hook, compiled in only with -DRESET_MEMBER_TEST_HOOKS (the Makefile's
 * $(BUILD)/e2e/reset-member, never `make all` or `make static`): env RESET_MEMBER_CRASH_AT=<step>
 * makes the process SIGKILL itself right after that step succeeded. Steps, in order: remove,
 * add, move, env, state, prune. Without the define act_crash_point does nothing. */
#define ACT_CRASH_ENV "RESET_MEMBER_CRASH_AT"

struct act_config {
    const char *name;            /* our --name */
    const char *peer_url;        /* our --peer-url */
    const char *data_dir;        /* --data-dir */
    const char *state_file;      /* --state-file */
    const char *env_file;        /* --env-file, NULL for none */
    const char *initial_cluster; /* --initial-cluster as given ("" if none): used for bootstrap */
    uint64_t keep_backups;       /* moved-aside copies to keep */
    int call_timeout_ms;         /* deadline of one membership call */
    time_t now;                  /* names the moved-aside dir */
};

struct act_result {
    uint64_t member_id;      /* the ID we run as (0 for bootstrap: etcd derives it) */
    char moved_to[PATH_MAX]; /* "" if nothing was moved */
    size_t pruned;           /* old copies deleted */
    const char *failed_step; /* step that failed, NULL if none */
};

/* Carry out d. ch and members (the list observe saw; may be NULL when unreachable) are
 * needed for join/readd/reset/keep's env file. Refuse and restore are not acted on here
 * (-EINVAL). Returns 0 or a negative errno with err filled; on failure nothing after the
 * failed step was done. */
int act_run(const struct act_config *c, const struct decide_decision *d, struct grpc_channel *ch,
            const struct etcd_member_list *members, struct act_result *r, char *err,
            size_t err_len);

/* ---- file operations, exposed for tests ------------------------------------------------ */

/* Write data to path atomically: temp file in the same dir, fsync, rename, fsync the dir. */
int act_write_atomic(const char *path, const char *data, size_t len, char *err, size_t err_len);

/* Rename data_dir to "<data_dir>.reset-<yyyymmddThhmmssZ>" (suffix -1, -2, ... if taken) and
 * fsync the parent. out receives the new path. -ENOENT if data_dir does not exist. */
int act_move_aside(const char *data_dir, time_t now, char *out, size_t out_len, char *err,
                   size_t err_len);

/* Delete the oldest "<data_dir>.reset-*" copies beyond keep. *pruned counts deletions.
 * Never touches data_dir itself. */
int act_prune_backups(const char *data_dir, uint64_t keep, size_t *pruned, char *err,
                      size_t err_len);

/* Render "name=peerURL,..." for the members (all peer URLs of each; unnamed members get their
 * hex ID as name, ours gets self_name). Returns 0 or -ENOSPC. */
int act_initial_cluster(const struct etcd_member_list *l, const char *self_name,
                        const char *self_peer_url, char *out, size_t out_len);

/* Step hook (see ACT_CRASH_ENV). */
void act_crash_point(const char *step);

/* File helpers shared with restore.c. dirname of path into buf ("." if none; -ENAMETOOLONG
 * if it does not fit), and fsync of a directory (0 or negative errno). */
int act_parent_of(const char *path, char *buf, size_t len);
/* Format a reason into err (truncated to err_len) and return rc: `return act_fail(...)`. */
int act_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Read a small regular file (the state, env and marker files): up to cap bytes into buf, the
 * count into *len. A file of cap bytes or more is -EFBIG (pass the bound + 1 as cap to tell a
 * full file from a longer one), anything but a regular file -EINVAL; else 0 or -errno. */
int act_read_small(const char *path, char *buf, size_t cap, size_t *len);

#endif
