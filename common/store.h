/* store.h - where backups go: an object store behind one interface, implemented by
 * store_s3.c (`s3://BUCKET/PREFIX`, any S3-compatible server) and store_file.c (`file:///PATH`,
 * a mounted volume), each a table of function pointers; callers never switch on the kind.
 * store.c holds the generic part: opening by URL scheme, name checks, putting a file region
 * cut into parts, putting a small buffer. What an object means (snapshot, manifest, the
 * backup/restore rules) is the backup module's and init/restore.c's.
 *
 * Rules every implementation keeps:
 * - an object is visible (listed, readable) only once complete: a failed, aborted or crashed
 *   upload is never listed and never read (S3: multipart uploads, file: temp name + rename);
 * - names are relative to the store's prefix, '/'-separated, checked by store_name_valid();
 * - secrets never reach a log line or an error message; URLs are logged without queries;
 * - every call is blocking (worker threads only), returns 0 or a negative errno, and writes
 *   one human-readable line into err on failure:
 *     -EACCES   refused credentials or signature (403, InvalidAccessKeyId, SignatureDoesNotMatch)
 *     -ENOENT   no such object (get, remove) or no such bucket / directory (NoSuchBucket)
 *     -EIO      a transient failure (5xx, 429, timeout, reset) that outlasted the retries
 *     -ECONNREFUSED  the store cannot be reached at all
 *     -EINVAL   a bad URL or name, or an answer we cannot parse
 *     -EBADMSG  the store answered a request with something that contradicts it (a short or
 *               changed object while reading, a part's checksum refused)
 *   or the negative errno of a local file operation. */
#ifndef ER_STORE_H
#define ER_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bounds.h"

struct store; /* one open store; each implementation embeds it first in its own struct */

struct store_entry {
    char name[STORE_MAX_NAME + 1]; /* relative to the store's prefix */
    uint64_t size;
    time_t mtime;
};

/* list callback: a nonzero return stops the listing and is returned by store_list */
typedef int (*store_list_fn)(void *arg, const struct store_entry *e);
/* get sink: receives the object's bytes in order; a negative return aborts the get and is
 * returned by store_get */
typedef int (*store_sink_fn)(void *arg, const void *buf, size_t len);

struct store_options {
    uint64_t part_size; /* 0: STORE_PART_DEFAULT; else in [STORE_PART_MIN, STORE_PART_MAX] */
    int retry_attempts; /* 0: STORE_RETRY_ATTEMPTS (tries of one request) */
    int retry_base_ms;  /* 0: STORE_RETRY_BASE_MS */
    int low_speed_s;    /* 0: STORE_LOW_SPEED_SECONDS */
};

struct store_upload;

/* One part of an upload: bytes [off, off+len) of fd become bytes [obj_off, obj_off+len) of the
 * object. Parts are numbered from 1 in object order. */
struct store_part {
    unsigned number;
    uint64_t obj_off;
    int fd;
    uint64_t off, len;
};

struct store_ops {
    const char *scheme; /* "s3", "file": the URL scheme it serves */
    int (*open)(const char *url, const struct store_options *o, struct store **out, char *err,
                size_t err_len);
    void (*close)(struct store *s);
    int (*upload_begin)(struct store *s, const char *name, struct store_upload **out, char *err,
                        size_t err_len);
    /* part p (see store_upload_part for the rules). Frees nothing on failure: the caller
     * aborts. */
    int (*upload_part)(struct store_upload *u, const struct store_part *p, char *err,
                       size_t err_len);
    /* makes the object visible; frees u, also on failure (then nothing is visible) */
    int (*upload_commit)(struct store_upload *u, char *err, size_t err_len);
    /* drops everything written; frees u */
    void (*upload_abort)(struct store_upload *u);
    int (*get)(struct store *s, const char *name, store_sink_fn sink, void *arg, char *err,
               size_t err_len);
    int (*list)(struct store *s, const char *prefix, store_list_fn fn, void *arg, char *err,
                size_t err_len);
    int (*remove)(struct store *s, const char *name, char *err, size_t err_len);
    /* aborts unfinished uploads under prefix started before `before`; *aborted counts them */
    int (*abort_stale)(struct store *s, const char *prefix, time_t before, unsigned *aborted,
                       char *err, size_t err_len);
};

struct store {
    const struct store_ops *ops;
    uint64_t part_size;
    char url[STORE_MAX_URL]; /* as opened, for log lines (no secret: the env holds those) */
};

/* one object being written; each implementation embeds it first in its own struct */
struct store_upload {
    struct store *store;
    atomic_uint highest, stored; /* store.c: the highest part number taken, parts taken */
};

extern const struct store_ops store_s3_ops;
extern const struct store_ops store_file_ops;
extern const struct store_ops store_azure_ops; /* store_azure.c (azure://) */

/* true when url names a store (s3://, file://, azure://); a plain path or http(s) URL is not */
bool store_is_url(const char *url);

/* Opens the store url names. The S3 one reads the AWS_* env (see store_s3.c); neither
 * touches the network or the disk beyond checking the URL (file: that the directory exists).
 * Returns 0 with *out set (free with store_close), or -EINVAL / -ENOENT / -ENOMEM. */
int store_open(const char *url, const struct store_options *o, struct store **out, char *err,
               size_t err_len);
void store_close(struct store *s);

/* A valid object name or listing prefix: 1..STORE_MAX_NAME bytes, printable ASCII or UTF-8,
 * no leading '/', no empty, "." or ".." component, no component starting with '.' (temp
 * names), no control characters. A prefix may be "" and may end with '/'. */
bool store_name_valid(const char *name, bool is_prefix);

int store_upload_begin(struct store *s, const char *name, struct store_upload **out, char *err,
                       size_t err_len);
/* Stores part p. Part 1 comes first, alone: its call may return before it is sent (S3 holds it
 * back to send a small object in one PUT), so its region stays readable and unchanged until the
 * call of part 2 has returned (or until commit); any other part's region until its own call
 * has returned (a retried part is read again). After part 1's call, up to STORE_UPLOAD_STREAMS
 * calls for distinct parts may run at once from different threads. Every part but the last is
 * at least STORE_TAIL_PART_MIN bytes. */
int store_upload_part(struct store_upload *u, const struct store_part *p, char *err,
                      size_t err_len);
/* Makes the object visible once every call returned: parts 1..n, n the highest number taken;
 * a part missing below it fails the commit (and aborts). */
int store_upload_commit(struct store_upload *u, char *err, size_t err_len);
void store_upload_abort(struct store_upload *u);

/* The whole region [off, off+len) of fd as object name, cut into parts of s->part_size; on any
 * failure the upload is aborted and nothing is visible. */
int store_put_file(struct store *s, const char *name, int fd, uint64_t off, uint64_t len, char *err,
                   size_t err_len);
/* A small object from memory (a manifest): len <= STORE_PART_MAX. */
int store_put_buffer(struct store *s, const char *name, const void *buf, size_t len, char *err,
                     size_t err_len);

/* Streams object name to sink. S3 retries a broken transfer from the byte it stopped at
 * (Range + If-Match on the first answer's ETag), so sink sees every byte exactly once. */
int store_get(struct store *s, const char *name, store_sink_fn sink, void *arg, char *err,
              size_t err_len);
/* Every complete object whose name starts with prefix, in no promised order. */
int store_list(struct store *s, const char *prefix, store_list_fn fn, void *arg, char *err,
               size_t err_len);
/* Removing an absent object is -ENOENT for the file store and 0 for S3 (S3 cannot tell). */
int store_remove(struct store *s, const char *name, char *err, size_t err_len);
int store_abort_stale(struct store *s, const char *prefix, time_t before, unsigned *aborted,
                      char *err, size_t err_len);

#endif
