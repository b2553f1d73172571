/* backup.h - off-node backups (--backup-url): one backup streams the local member's snapshot
 * through the codec (zstd, age) into an unlinked spool file in --spool-dir, uploads it in
 * parts cut from the spool (store.h), then writes <object>.manifest.json last; a schedule
 * thread takes the cluster's turn (backup_turn.h) every --backup-interval, verifies, prunes
 * (retention.h); POST/GET /backups on the snapshot routes' access rule.
 *
 * Depends on snapctx.h (etcd channel, worker threads, access control), cache.h (health for
 * the turn), routes.h/metrics.h, and common/codec, store, retention. Only main.c uses it.
 * Every blocking call (etcd, spool, store) runs on the schedule thread or a request's worker
 * thread, never on the event loop. */
#ifndef ER_BACKUP_H
#define ER_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "age.h"
#include "snapctx.h"

struct cache;
struct routes;
struct backup;

struct backup_config {
    const char *url;             /* --backup-url (s3://, file://); NULL/"": backups off */
    uint64_t interval_ms;        /* --backup-interval; 0: no schedule */
    uint64_t verify_interval_ms; /* --backup-verify-interval */
    const char *keep;            /* --backup-keep ("N" or tiers); NULL/"": keep all */
    bool compress;               /* --backup-compress zstd */
    int zstd_level;              /* 0: codec's default */
    const struct age_recipient *recipients; /* copied */
    size_t n_recipients;
    const char *spool_dir; /* --spool-dir; NULL/"": /tmp */
    struct snapctx *snap;  /* borrowed: the etcd channel, pool and access rule */
    struct cache *cache;   /* borrowed: the probes' view for the turn */
};

/* Opens the store (no network yet), checks the policy and starts the schedule thread (it
 * aborts stale multipart uploads first). NULL with err filled. */
struct backup *backup_new(const struct backup_config *cfg, char *err, size_t err_len);
/* Stops the schedule thread (joins it: call before the snapshot module is freed). */
void backup_free(struct backup *b);
/* Registers /backups and the metrics source. 0 or a negative errno. */
int backup_add_routes(struct backup *b, struct routes *r);

/* Redacts a URL for logging: drops the query string and any user:password@. */
void backup_url_redact(const char *url, char *out, size_t len);

#endif
