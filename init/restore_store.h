/* restore_store.h - `--restore-from s3://…` / `file:///…`: find the backup to restore in a store
 * (store.h), download it to the restore's download file while checking it against its
 * manifest, and undo .zst/.age on the way. Validation of the snapshot bytes, the restore and
 * the marker stay restore.c's; writing backups is the agent's backup module's.
 *
 * Layout read (the agent's): PREFIX/<16-hex cluster ID>/<yyyymmddThhmmssZ>-rev<N>.db[.zst][.age]
 * and beside each object <object>.manifest.json (db_sha256, object_sha256, object_size,
 * revision, member, etcd_version, compression, encryption, took_ms). A URL ending in '/' names
 * the newest complete backup under it (manifest present and its object_size = the object's
 * size; newest by the name's time, then revision), which is also the newest cluster's; any
 * other URL names one object, restored with or without a manifest. */
#ifndef ER_RESTORE_STORE_H
#define ER_RESTORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "bounds.h"

#define RESTORE_MAX_MANIFEST (64u * 1024) /* manifest file size */
#define RESTORE_MAX_CANDIDATES 100000     /* backup-shaped objects considered in a listing */
#define RESTORE_MAX_MANIFEST_READS 16     /* newest candidates whose manifest is read */

struct restore_object {
    char url[STORE_MAX_URL + STORE_MAX_NAME + 2]; /* the object's full URL (no secret) */
    char name[STORE_MAX_NAME + 1];                /* relative to the store */
    uint64_t size;                                /* bytes downloaded (the stored object) */
    char object_sha256[65];                       /* of the stored bytes, computed */
    bool has_manifest;
    char db_sha256[65]; /* manifest's db_sha256 ("" without a manifest) */
    bool zstd, age;     /* from the name's suffixes */
    /* sha256 of the downloaded file's bytes but its last 32, computed as they were written:
     * what the snapshot's trailing digest must equal (restore_validate_hashed) */
    uint8_t data_sha256[32];
};

/* A sha256 of a stream but its last 32 bytes (a snapshot's data without its trailing digest),
 * fed in pieces of any size: the last 32 bytes seen wait in window. md: an EVP_MD_CTX set up
 * for sha256 by the caller, who finishes it. */
struct restore_lag_hash {
    EVP_MD_CTX *md;
    uint8_t window[32];
    size_t window_len;
};
int restore_lag_hash_update(struct restore_lag_hash *h, const uint8_t *buf, size_t len);

/* true for s3:// and file:// sources */
bool restore_store_is_url(const char *source);

/* A backup object name's parts: <16 hex>/<yyyymmddThhmmssZ>-rev<N>.db[.zst][.age] (relative,
 * possibly below more prefix components). Returns 0 with the time string (16 chars + NUL) and
 * the revision, or -EINVAL. */
int restore_store_parse_name(const char *name, char *when, uint64_t *rev, bool *zstd, bool *age);

/* Resolve source, download (and decode) the object into path (created 0600, fsynced; removed
 * on failure). identity_file: an age identity file for .age objects (NULL: none). Returns 0
 * with *o filled, or a negative errno with err filled: -ENOENT (no complete backup, no such
 * object or bucket), -EACCES, -ECONNREFUSED / -EIO (store unreachable or failing), -EBADMSG
 * (object differs from its manifest: size or sha256; or it cannot be decoded: not zstd, not
 * age, no matching identity, truncated), -EFBIG (larger than max_bytes). Nothing but path is
 * written. */
int restore_store_fetch(const char *source, const char *identity_file, const char *path,
                        uint64_t max_bytes, struct restore_object *o, char *err, size_t err_len);

#endif
