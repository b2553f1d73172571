/* codec.h - the backup/restore filter chain: plain bytes -> zstd -> age -> sink to store a
 * backup, and object bytes -> age -> zstd -> sink to restore one, each stage optional, with
 * the sha256 and size of both ends. Streaming with bounded buffers; where the bytes come
 * from and go to (etcd, spool, store, restore file) is the caller's. */
#ifndef ER_CODEC_H
#define ER_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "age.h"

struct codec;

struct codec_enc_opts {
    bool zstd;                              /* compress */
    int zstd_level;                         /* 1..CODEC_ZSTD_MAX_LEVEL; 0 = the default (3) */
    const struct age_recipient *recipients; /* encrypt to these (NULL/0: no encryption) */
    size_t n_recipients;                    /* 0..AGE_MAX_RECIPIENTS */
    bool no_plain_sha256; /* the caller hashes the plain bytes itself (a backup has etcd's
                           * digest): skip that pass; codec_result.plain_sha256 is then zeros */
};

struct codec_dec_opts {
    bool zstd; /* the object is zstd-compressed (name ends .zst[.age]) */
    const struct age_identity *identities; /* the object is age-encrypted (NULL/0: it is not) */
    size_t n_identities;                   /* 0..AGE_MAX_IDENTITIES (copied) */
};

/* What passed through, both ends (set by codec_finish, valid when it returned 0). "plain" is
 * the etcd snapshot (db) bytes, "object" the stored bytes: for the encoder plain is the input
 * and object the output, for the decoder the reverse. */
struct codec_result {
    uint8_t plain_sha256[32];
    uint64_t plain_size;
    uint8_t object_sha256[32];
    uint64_t object_size;
};

/* A chain writing the object to sink(sink_arg, ...). Memory: zstd's streaming context for the
 * level (level 3: ~1.3 MiB plus the 2 MiB window) and age's ~130 KiB. Returns 0, -EINVAL
 * (bad level or recipient count), -ENOMEM, -EIO. */
int codec_enc_new(struct codec **out, const struct codec_enc_opts *o, age_sink_fn sink,
                  void *sink_arg);
/* A chain writing the plain bytes to sink. Frames may ask a zstd window of at most
 * 2^CODEC_ZSTD_MAX_WINDOW_LOG. Only authenticated bytes reach the sink, but the stream is
 * complete and intact only when codec_finish returns 0. */
int codec_dec_new(struct codec **out, const struct codec_dec_opts *o, age_sink_fn sink,
                  void *sink_arg);
/* Feeds len bytes. Returns 0 or (sticky) the sink's error, -EIO (zstd/OpenSSL failure, e.g. a
 * zstd frame that is corrupt or asks too large a window: -EBADMSG), or age's errors
 * (age_dec_write). */
int codec_write(struct codec *c, const void *buf, size_t len);
/* Flushes and ends every stage and fills *res (may be NULL). The decoder refuses with
 * -EBADMSG a truncated zstd frame, an empty zstd stream, and age's truncations. */
int codec_finish(struct codec *c, struct codec_result *res);
/* Why the last call failed ("" if unknown). */
const char *codec_error(const struct codec *c);
void codec_free(struct codec *c);

#endif
