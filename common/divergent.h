/* divergent.h - the divergent marker: the agent records there that the leader's HashKV check
 * named its member divergent by a majority; reset-member reads it and treats the data like
 * corrupt data. One small JSON object, written atomically and fsynced. Its place is
 * "<data-dir>.divergent" unless both programs are told another file on the same volume
 * (--divergent-marker: the manifests give the agent, whose data mount is read-only, a writable
 * subPath of the data volume).
 *
 * Who writes and removes it is agent/maint.c's; what it means is init/decide.c's. */
#ifndef ER_DIVERGENT_H
#define ER_DIVERGENT_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

#define DIVERGENT_SUFFIX ".divergent"
#define DIVERGENT_MOVED_NAME "divergent.json" /* inside a moved-aside copy */

struct divergent_marker {
    uint64_t member_id;  /* the member named (never 0) */
    uint64_t cluster_id; /* its cluster (never 0) */
    int64_t revision;    /* the HashKV revision R (> 0) */
    uint32_t hash;       /* the member's hash at R */
    uint32_t majority_hash;
    int64_t time; /* unix seconds of the check (>= 0) */
};

/* Strict: a JSON object with exactly these keys once each (member_id and cluster_id as
 * non-zero hex strings of at most 16 digits, the rest integers in range), at most
 * DIVERGENT_MAX_BYTES. 0 or -EINVAL. */
int divergent_parse(const char *buf, size_t len, struct divergent_marker *m);
/* One line of JSON with a trailing newline. 0, -EINVAL (a field out of range) or -ENOSPC. */
int divergent_render(const struct divergent_marker *m, char *out, size_t out_len);
/* The marker file `path`: 0, -ENOENT if absent, -EINVAL if unparsable or too large, -errno. */
int divergent_read(const char *path, struct divergent_marker *m);
/* Write it atomically (temp file, fsync, rename, fsync of the parent). 0 or -errno. */
int divergent_write(const char *path, const struct divergent_marker *m);
/* Remove it (and fsync the parent). 0 also when it was absent, or -errno. */
int divergent_remove(const char *path);
/* The default place, "<data_dir>.divergent", into out. 0 or -ENAMETOOLONG. */
int divergent_path(const char *data_dir, char *out, size_t out_len);

#endif
