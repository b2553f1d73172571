/* codec.c - the backup filter chain: sha256 of the plain bytes, zstd (libzstd streaming API)
 * and age (age.c) in the order encoding needs, with sha256 of the object bytes at the far
 * end; decoding runs it backwards. Only byte plumbing: no files, sockets or store here. */
#include "codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "bounds.h"

struct codec {
    bool decode;
    bool hash_plain; /* the encoder hashes its input (decoder: always) */
    age_sink_fn sink;
    void *sink_arg;
    EVP_MD_CTX *plain_md, *object_md;
    uint64_t plain_size, object_size;
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
    uint8_t *zbuf; /* zstd output buffer */
    size_t zbuf_cap;
    size_t zframe_left; /* decoder: ZSTD_decompressStream's hint; 0 at a frame end */
    bool zsaw_input;
    struct age_enc *ae;
    struct age_dec *ad;
    int err;
    bool finished;
    char why[AGE_ERR_LEN];
};

static int fail(struct codec *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct codec *c, int rc, const char *fmt, ...)
{
    if (fmt && !c->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof c->why, fmt, ap);
        va_end(ap);
    }
    return c->err = rc;
}

/* ---- the stages, from the far end back ---------------------------------------------------- */

/* Encoder: the object bytes, hashed, to the caller's sink. Decoder: the plain bytes. */
static int out_final(void *arg, const uint8_t *buf, size_t len)
{
    struct codec *c = arg;
    EVP_MD_CTX *md = c->decode ? c->plain_md : c->object_md;
    if (len == 0)
        return 0;
    if (EVP_DigestUpdate(md, buf, len) != 1)
        return -EIO;
    if (c->decode)
        c->plain_size += len;
    else
        c->object_size += len;
    return c->sink(c->sink_arg, buf, len);
}

/* After zstd: the encoder's age stage (or the end), the decoder's end. */
static int after_zstd(struct codec *c, const uint8_t *buf, size_t len)
{
    if (!c->decode && c->ae)
        return age_enc_write(c->ae, buf, len);
    return out_final(c, buf, len);
}

static int zstd_compress(struct codec *c, const uint8_t *buf, size_t len, ZSTD_EndDirective op)
{
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {c->zbuf, c->zbuf_cap, 0};
        size_t r = ZSTD_compressStream2(c->zc, &out, &in, op);
        if (ZSTD_isError(r))
            return fail(c, -EIO, "zstd: %s", ZSTD_getErrorName(r));
        if (out.pos) {
            int rc = after_zstd(c, c->zbuf, out.pos);
            if (rc != 0)
                return rc;
        }
        if (op == ZSTD_e_continue ? in.pos == in.size : r == 0)
            return 0;
    }
}

static int zstd_decompress(struct codec *c, const uint8_t *buf, size_t len)
{
    ZSTD_inBuffer in = {buf, len, 0};
    ZSTD_outBuffer out;
    size_t r;
    if (len)
        c->zsaw_input = true;
    /* Call again while input is left, or while a full output buffer may hide more output of
     * an unfinished frame (r == 0: the frame ended and everything was flushed; calling again
     * would start the next frame's hint). */
    do {
        out = (ZSTD_outBuffer){c->zbuf, c->zbuf_cap, 0};
        r = ZSTD_decompressStream(c->zd, &out, &in);
        if (ZSTD_isError(r))
            return fail(c, -EBADMSG, "zstd: %s", ZSTD_getErrorName(r));
        c->zframe_left = r;
        if (out.pos) {
            int rc = after_zstd(c, c->zbuf, out.pos);
            if (rc != 0)
                return rc;
        }
    } while (in.pos < in.size || (out.pos == out.size && r != 0));
    return 0;
}

/* Decoder: what age (or the input, without age) hands on. */
static int dec_after_age(void *arg, const uint8_t *buf, size_t len)
{
    struct codec *c = arg;
    if (c->zd)
        return zstd_decompress(c, buf, len);
    return out_final(c, buf, len);
}

/* Encoder: age's output. */
static int enc_after_age(void *arg, const uint8_t *buf, size_t len)
{
    return out_final(arg, buf, len);
}

/* ---- construction ------------------------------------------------------------------------- */

static struct codec *codec_alloc(bool decode, age_sink_fn sink, void *sink_arg)
{
    struct codec *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->decode = decode;
    c->sink = sink;
    c->sink_arg = sink_arg;
    c->plain_md = EVP_MD_CTX_new();
    c->object_md = EVP_MD_CTX_new();
    if (!c->plain_md || !c->object_md || EVP_DigestInit_ex(c->plain_md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(c->object_md, EVP_sha256(), NULL) != 1) {
        codec_free(c);
        return NULL;
    }
    return c;
}

int codec_enc_new(struct codec **out, const struct codec_enc_opts *o, age_sink_fn sink,
                  void *sink_arg)
{
    int level = o->zstd_level ? o->zstd_level : CODEC_ZSTD_DEFAULT_LEVEL;
    *out = NULL;
    if (!sink || level < 1 || level > CODEC_ZSTD_MAX_LEVEL ||
        o->n_recipients > AGE_MAX_RECIPIENTS || (o->n_recipients && !o->recipients))
        return -EINVAL;
    struct codec *c = codec_alloc(false, sink, sink_arg);
    if (!c)
        return -ENOMEM;
    c->hash_plain = !o->no_plain_sha256;
    int rc = -ENOMEM;
    if (o->zstd) {
        c->zbuf_cap = ZSTD_CStreamOutSize();
        if (!(c->zc = ZSTD_createCCtx()) || !(c->zbuf = malloc(c->zbuf_cap)))
            goto fail;
        rc = -EIO;
        if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1)))
            goto fail;
    }
    if (o->n_recipients &&
        (rc = age_enc_new(&c->ae, o->recipients, o->n_recipients, enc_after_age, c)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    codec_free(c);
    return rc;
}

int codec_dec_new(struct codec **out, const struct codec_dec_opts *o, age_sink_fn sink,
                  void *sink_arg)
{
    *out = NULL;
    if (!sink || o->n_identities > AGE_MAX_IDENTITIES || (o->n_identities && !o->identities))
        return -EINVAL;
    struct codec *c = codec_alloc(true, sink, sink_arg);
    if (!c)
        return -ENOMEM;
    int rc = -ENOMEM;
    if (o->zstd) {
        c->zbuf_cap = ZSTD_DStreamOutSize();
        if (!(c->zd = ZSTD_createDCtx()) || !(c->zbuf = malloc(c->zbuf_cap)))
            goto fail;
        rc = -EIO;
        if (ZSTD_isError(
                ZSTD_DCtx_setParameter(c->zd, ZSTD_d_windowLogMax, CODEC_ZSTD_MAX_WINDOW_LOG)))
            goto fail;
    }
    if (o->n_identities &&
        (rc = age_dec_new(&c->ad, o->identities, o->n_identities, dec_after_age, c)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    codec_free(c);
    return rc;
}

/* ---- streaming ---------------------------------------------------------------------------- */

int codec_write(struct codec *c, const void *buf, size_t len)
{
    int rc;
    if (c->err)
        return c->err;
    if (c->finished)
        return fail(c, -EINVAL, "write after finish");
    if (len == 0)
        return 0;
    if (c->decode) {
        if (EVP_DigestUpdate(c->object_md, buf, len) != 1)
            return fail(c, -EIO, "sha256 failed");
        c->object_size += len;
        if (c->ad) {
            rc = age_dec_write(c->ad, buf, len);
            if (rc != 0 && !c->why[0])
                fail(c, rc, "age: %s", age_dec_error(c->ad));
        } else {
            rc = dec_after_age(c, buf, len);
        }
    } else {
        if (c->hash_plain && EVP_DigestUpdate(c->plain_md, buf, len) != 1)
            return fail(c, -EIO, "sha256 failed");
        c->plain_size += len;
        if (c->zc)
            rc = zstd_compress(c, buf, len, ZSTD_e_continue);
        else if (c->ae)
            rc = age_enc_write(c->ae, buf, len);
        else
            rc = out_final(c, buf, len);
    }
    return rc ? fail(c, rc, "output failed (%s)", strerror(-rc)) : 0;
}

int codec_finish(struct codec *c, struct codec_result *res)
{
    int rc = 0;
    if (c->err)
        return c->err;
    if (c->finished)
        return fail(c, -EINVAL, "finish called twice");
    if (c->decode) {
        if (c->ad && (rc = age_dec_finish(c->ad)) != 0)
            return fail(c, rc, "age: %s", age_dec_error(c->ad));
        if (c->zd && !c->zsaw_input)
            return fail(c, -EBADMSG, "zstd: empty input (no frame)");
        if (c->zd && c->zframe_left != 0)
            return fail(c, -EBADMSG, "zstd: truncated frame");
    } else {
        if (c->zc && (rc = zstd_compress(c, NULL, 0, ZSTD_e_end)) != 0)
            return fail(c, rc, "compression failed (%s)", strerror(-rc));
        if (c->ae && (rc = age_enc_finish(c->ae)) != 0)
            return fail(c, rc, "encryption failed (%s)", strerror(-rc));
    }
    c->finished = true;
    if (res) {
        unsigned int n = 0;
        if (!c->decode && !c->hash_plain)
            memset(res->plain_sha256, 0, sizeof res->plain_sha256);
        else if (EVP_DigestFinal_ex(c->plain_md, res->plain_sha256, &n) != 1)
            return fail(c, -EIO, "sha256 failed");
        if (EVP_DigestFinal_ex(c->object_md, res->object_sha256, &n) != 1)
            return fail(c, -EIO, "sha256 failed");
        res->plain_size = c->plain_size;
        res->object_size = c->object_size;
    }
    return 0;
}

const char *codec_error(const struct codec *c)
{
    return c->why;
}

void codec_free(struct codec *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->plain_md);
    EVP_MD_CTX_free(c->object_md);
    ZSTD_freeCCtx(c->zc);
    ZSTD_freeDCtx(c->zd);
    free(c->zbuf);
    age_enc_free(c->ae);
    age_dec_free(c->ad);
    free(c);
}
