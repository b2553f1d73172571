/* restore.h - reset-member's quorum-loss restore (issue 6): fetch a snapshot (file or http(s)
 * URL), validate it before touching anything, restore it as a one-member cluster into a staging
 * dir beside the data dir, swap it in, write the marker and the state.
 *
 * Whether to restore is decide.c's (DECIDE_RESTORE, from the facts restore_facts() adds); the
 * peers' MemberAdd path is act.c's. Markers make a rerun a no-op. */
#ifndef ER_RESTORE_H
#define ER_RESTORE_H

#include <linux/limits.h> /* PATH_MAX; <limits.h> is shadowed by common/limits.h */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bounds.h"
#include "decide.h"

#define RESTORE_DIGEST_LEN 32 /* etcdctl's snapshot = db bytes + sha256 of them */
#define RESTORE_MIN_PAGE 512  /* bbolt page sizes we accept (OS page size) */
#define RESTORE_MAX_PAGE 65536
#define RESTORE_MAX_BYTES (64ull << 30) /* largest download (etcd's quota tops out at 8 GiB) */
#define RESTORE_READ_CHUNK (1u << 20)   /* hashing read size */
#define RESTORE_PROGRESS_MS 5000        /* progress log line interval (download, hashing) */
#define RESTORE_CONNECT_TIMEOUT_MS 10000
#define RESTORE_LOW_SPEED_SECONDS 60 /* abort a download that moved no byte for this long */
#define RESTORE_MAX_REDIRECTS 5      /* presigned object-store URLs may redirect */
#define RESTORE_MAX_MARKER 8192      /* marker file size */
#define RESTORE_MAX_TOKEN 256
#define RESTORE_MAX_TOOL_OUTPUT 4096 /* tail of etcdctl's output kept for the reason */
#define RESTORE_POLL_MS 50           /* child wait poll */

/* Names beside the data dir (same volume, so renames are atomic). */
#define RESTORE_MARKER_SUFFIX ".restore-marker"
#define RESTORE_STAGING_SUFFIX ".restore-staging"
#define RESTORE_DOWNLOAD_SUFFIX ".restore-download"

/* Test-only: RESET_MEMBER_CRASH_AT (act.h) steps of a restore, in order: fetch, restore,
 * restore-move, swap, marker, env, state; a peer's marker after joining: peer-marker. */

struct restore_snapshot {
    uint64_t size;    /* file size */
    uint64_t db_size; /* size - digest */
    uint32_t page_size;
    uint64_t txid; /* of the meta bbolt would use */
    int valid_metas;
    char sha256[2 * RESTORE_DIGEST_LEN + 1]; /* hex of the trailing digest (verified) */
};

/* Validate a snapshot file without changing it: not an HTML/XML page, size = whole bbolt
 * pages + 32, at least one valid bbolt meta page (page size read from the file), high-water
 * page inside the file, trailing sha256 = sha256 of the rest. Returns 0 with *s filled, or
 * -EINVAL (not a snapshot; why in err), or a negative errno from I/O. */
int restore_validate(const char *path, struct restore_snapshot *s, char *err, size_t err_len);
/* The same, with the sha256 of the file's bytes but its last 32 already known (computed while
 * the file was written: a download from a store): the file is not read a second time for it. */
int restore_validate_hashed(const char *path, const uint8_t data_sha256[32],
                            struct restore_snapshot *s, char *err, size_t err_len);

/* The first bytes of a file that is not a snapshot, classified for the reason ("an HTML/XML
 * page", "text", ...); NULL if they could start a bbolt file (meta page 0 has id 0). */
const char *restore_sniff(const uint8_t *buf, size_t len);

/* ---- marker ------------------------------------------------------------------------------ */

struct restore_marker {
    bool restorer;                           /* role=restorer|peer */
    char source[PATH_MAX + 256];             /* --restore-from as given */
    char sha256[2 * RESTORE_DIGEST_LEN + 1]; /* restorer: the snapshot's digest */
    char token[RESTORE_MAX_TOKEN];           /* restorer: the new cluster token */
    uint64_t cluster_id;                     /* restored cluster (restorer) / joined (peer) */
    char object[STORE_MAX_NAME + 1];         /* restorer from a store: the object it resolved */
    char object_sha256[2 * RESTORE_DIGEST_LEN + 1]; /* ... and the stored bytes' sha256 */
};

/* "key=value\n" lines: role, source, sha256, token, cluster_id (hex), and for a restore from a
 * store object and object_sha256 (written only when set). Unknown keys are
 * ignored (newer writers). Returns 0, or -EINVAL (missing/invalid role or cluster_id,
 * a duplicate key, oversized value, a line without newline). */
int restore_marker_parse(const char *buf, size_t len, struct restore_marker *m);
/* Returns 0 or -ENOSPC / -EINVAL (a value holds a newline). */
int restore_marker_render(const struct restore_marker *m, char *out, size_t out_len);
/* "<data_dir>.restore-marker": 0, -ENOENT if absent, -EINVAL if unparsable, -errno. */
int restore_marker_read(const char *data_dir, struct restore_marker *m);
/* Atomic (temp + fsync + rename + fsync of the dir). */
int restore_marker_write(const char *data_dir, const struct restore_marker *m, char *err,
                         size_t err_len);

/* The restore facts for decide(): requested, role, whether the marker matches this request
 * (same source and role; for a restorer whose source is a readable local file, also the same
 * trailing digest) and the marker's cluster ID. Reads at most the marker and 32 bytes. */
void restore_facts(const char *data_dir, const char *source, bool restorer, struct decide_facts *f);

/* true for sources that are not a local file: http(s):// URLs and stores (s3://, file://) */
bool restore_is_url(const char *source);

/* ---- the restore ------------------------------------------------------------------------- */

/* ---- revision bump (etcd 3.5+'s etcdutl) ----------------------------------------------------- */

#define RESTORE_DEFAULT_BUMP_REVISION 1000000000ull /* Kubernetes' restore guide's figure */

/* Does `<tool> snapshot restore --help` (its output, help[0..len), not NUL-terminated) list both
 * --bump-revision and --mark-compacted as flags? A flag counts where a line's first word (after
 * an optional "-x, " shorthand) is "--NAME" ended by a space, tab, '=' or '['; mentions in a
 * description do not count. etcdutl 3.5+ and etcd 3.5's etcdctl: true; etcd 3.4's etcdctl:
 * false. */
bool restore_help_has_bump(const char *help, size_t len);

enum restore_bump {
    RESTORE_BUMP_OFF = 0,     /* bump_revision 0, or no restore tool was run */
    RESTORE_BUMP_APPLIED,     /* the tool got --bump-revision N --mark-compacted */
    RESTORE_BUMP_UNSUPPORTED, /* the tool lacks them (etcd 3.4): restored without, warned */
};
/* "off", "applied", "unsupported" */
const char *restore_bump_name(enum restore_bump b);

struct restore_config {
    const char *name, *peer_url, *data_dir, *state_file, *env_file; /* env_file may be NULL */
    const char
        *source; /* file path, http(s) URL, or store URL (s3://, file://; see restore_store.h) */
    const char *identity_file;       /* age identity for .age store objects (NULL: none) */
    const char *token;               /* --initial-cluster-token; the new one derives from it */
    const char *cacert, *cert, *key; /* client TLS for https sources (cert/key may be NULL) */
    int timeout_ms;                  /* download and restore tool, each */
    const char *tool;                /* NULL: etcdutl if in PATH, else etcdctl */
    uint64_t bump_revision;          /* --bump-revision N --mark-compacted when the tool has
                                      * them; 0: never */
    time_t now;                      /* names the moved-aside dir */
};

struct restore_result {
    struct restore_snapshot snap;
    char token[RESTORE_MAX_TOKEN];
    uint64_t member_id, cluster_id;  /* of the restored data */
    char moved_to[PATH_MAX];         /* "" if there was no data dir */
    char tool[NAME_MAX + 1];         /* base name of the restore tool run ("" if none) */
    char object[STORE_MAX_NAME + 1]; /* from a store: the object restored ("" otherwise) */
    char object_sha256[2 * RESTORE_DIGEST_LEN + 1];
    double fetch_ms, validate_ms, restore_ms;
    enum restore_bump bump;  /* what became of c->bump_revision */
    bool not_snapshot;       /* fetch or validation failed: nothing was touched (refuse) */
    const char *failed_step; /* NULL on success */
};

/* Fetch (URL -> "<data_dir>.restore-download"), validate, restore into
 * "<data_dir>.restore-staging" (a leftover is removed first; with c->bump_revision the tool's
 * --help is read first, and a tool without the bump flags gets none and a warning line), move the
 * data dir aside, rename the staging dir in, write the marker, then the env and state files (new;
 * ETCD_INITIAL_CLUSTER = name=peer_url). Returns 0, or a negative errno with err filled and
 * r->failed_step set; r->not_snapshot when fetching or validating failed, before anything was
 * touched. */
int restore_run(const struct restore_config *c, struct restore_result *r, char *err,
                size_t err_len);

/* Only validate (dry run): a file source is validated; a URL is not fetched. */
int restore_check(const struct restore_config *c, struct restore_result *r, char *err,
                  size_t err_len);

/* After a peer joined the restored cluster (join/readd/reset under a restore request): record
 * it so that later runs, even with the cluster unreachable, take the normal table. */
int restore_peer_done(const char *data_dir, const char *source, uint64_t cluster_id, char *err,
                      size_t err_len);

/* "<token>-restored-<first 8 hex of sha256>" */
int restore_new_token(const char *token, const char *sha256_hex, char *out, size_t out_len);

#endif
