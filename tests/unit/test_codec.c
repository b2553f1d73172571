/* test_codec.c - common/codec.c: round trips through every stage combination with the sha256
 * and sizes of both ends, concatenated zstd frames, truncated / corrupt / empty compressed
 * input refused, the decoder's window bound, bad options, sink errors. Interop with the zstd
 * and age tools is tests/e2e/age_interop.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "age.h"
#include "bounds.h"
#include "codec.h"
#include "testutil.h"

/* Compressible, JSON-like bytes. */
static uint8_t *json(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    size_t o = 0;
    for (unsigned i = 0; o < n; i++) {
        char line[160];
        int l =
            snprintf(line, sizeof line,
                     "{\"kind\":\"Pod\",\"name\":\"app-%u\",\"rv\":\"%u\",\"ip\":\"10.0.%u.%u\"}\n",
                     i % 97, 1000000 + i, (i * 7) % 256, (i * 13) % 256);
        size_t take = n - o < (size_t)l ? n - o : (size_t)l;
        memcpy(p + o, line, take);
        o += take;
    }
    return p;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned int l = 0;
    assert_int_equal(EVP_Digest(p, n, out, &l, EVP_sha256(), NULL), 1);
}

static struct age_identity id;
static struct age_recipient rcp;

static int setup(void **state)
{
    (void)state;
    if (age_keygen(&id) != 0)
        return -1;
    age_identity_recipient(&id, &rcp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    age_identity_wipe(&id, 1);
    return 0;
}

/* Writes p to c in pieces of `piece` bytes (0: all at once), then finishes; the first error. */
static int feed(struct codec *c, const uint8_t *p, size_t n, size_t piece, struct codec_result *res)
{
    size_t step = piece ? piece : (n ? n : 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = codec_write(c, p + i, n - i < step ? n - i : step);
    return rc ? rc : codec_finish(c, res);
}

static int encode(const uint8_t *p, size_t n, bool zstd, bool age, size_t piece,
                  struct test_buf *out, struct codec_result *res)
{
    struct codec_enc_opts o = {
        .zstd = zstd, .recipients = age ? &rcp : NULL, .n_recipients = age ? 1 : 0};
    struct codec *c = NULL;
    assert_int_equal(codec_enc_new(&c, &o, test_buf_sink, out), 0);
    int rc = feed(c, p, n, piece, res);
    codec_free(c);
    return rc;
}

static int decode(const uint8_t *p, size_t n, bool zstd, bool age, size_t piece,
                  struct test_buf *out, struct codec_result *res, char *why, size_t whylen)
{
    struct codec_dec_opts o = {
        .zstd = zstd, .identities = age ? &id : NULL, .n_identities = age ? 1 : 0};
    struct codec *c = NULL;
    assert_int_equal(codec_dec_new(&c, &o, test_buf_sink, out), 0);
    int rc = feed(c, p, n, piece, res);
    if (why)
        snprintf(why, whylen, "%s", codec_error(c));
    codec_free(c);
    return rc;
}

static void test_round_trips(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 65536, (1u << 20) + 7};
    static const size_t pieces[] = {0, 1000, 65536 + 7};
    for (int mode = 0; mode < 4; mode++) {
        bool zstd = mode & 1, age = mode & 2;
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t pc = 0; pc < sizeof pieces / sizeof *pieces; pc++) {
                size_t n = sizes[s];
                uint8_t *p = json(n), sha[32];
                struct test_buf obj = {0}, back = {0};
                struct codec_result er, dr;
                char why[AGE_ERR_LEN];
                assert_int_equal(encode(p, n, zstd, age, pieces[pc], &obj, &er), 0);
                sha256(p, n, sha);
                assert_memory_equal(er.plain_sha256, sha, 32);
                assert_int_equal(er.plain_size, n);
                sha256(obj.p, obj.len, sha);
                assert_memory_equal(er.object_sha256, sha, 32);
                assert_int_equal(er.object_size, obj.len);
                if (zstd && n > 65536)
                    assert_true(obj.len < n / 4); /* it did compress */
                if (!zstd && !age && n)
                    assert_memory_equal(obj.p, p, n);
                int rc = decode(obj.p, obj.len, zstd, age, pieces[pc], &back, &dr, why, sizeof why);
                if (rc != 0)
                    fail_msg("mode %d size %zu: %d %s", mode, n, rc, why);
                assert_int_equal(back.len, n);
                if (n)
                    assert_memory_equal(back.p, p, n);
                assert_memory_equal(dr.plain_sha256, er.plain_sha256, 32);
                assert_memory_equal(dr.object_sha256, er.object_sha256, 32);
                assert_int_equal(dr.object_size, er.object_size);
                assert_int_equal(dr.plain_size, n);
                free(obj.p);
                free(back.p);
                free(p);
            }
    }
}

/* no_plain_sha256: the same object, the plain digest left to the caller (zeros), the size kept */
static void test_no_plain_sha256(void **state)
{
    (void)state;
    size_t n = (1u << 20) + 7;
    uint8_t *p = json(n), zero[32] = {0};
    struct test_buf a = {0}, b = {0};
    struct codec_result ra, rb;
    assert_int_equal(encode(p, n, true, false, 65536, &a, &ra), 0);
    struct codec_enc_opts o = {.zstd = true, .no_plain_sha256 = true};
    struct codec *c = NULL;
    assert_int_equal(codec_enc_new(&c, &o, test_buf_sink, &b), 0);
    for (size_t i = 0; i < n; i += 65536)
        assert_int_equal(codec_write(c, p + i, n - i < 65536 ? n - i : 65536), 0);
    assert_int_equal(codec_finish(c, &rb), 0);
    codec_free(c);
    assert_memory_equal(rb.plain_sha256, zero, 32);
    assert_memory_not_equal(ra.plain_sha256, zero, 32);
    assert_int_equal(rb.plain_size, n);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    assert_memory_equal(ra.object_sha256, rb.object_sha256, 32);
    free(a.p);
    free(b.p);
    free(p);
}

static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    uint8_t *p = json(n);
    char why[AGE_ERR_LEN];
    for (int age = 0; age < 2; age++) {
        struct test_buf obj = {0};
        assert_int_equal(encode(p, n, true, age, 0, &obj, NULL), 0);
        size_t cuts[] = {0, 1, 5, obj.len / 3, obj.len / 2, obj.len - 4, obj.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
            struct test_buf back = {0};
            int rc = decode(obj.p, cuts[i], true, age, 4096, &back, NULL, why, sizeof why);
            if (rc != -EBADMSG)
                fail_msg("age %d cut %zu/%zu: rc %d (%s)", age, cuts[i], obj.len, rc, why);
            free(back.p);
        }
        free(obj.p);
    }
    /* zstd alone: a truncated frame names itself; a flipped byte fails (frame checksum). */
    struct test_buf obj = {0}, back = {0};
    assert_int_equal(encode(p, n, true, false, 0, &obj, NULL), 0);
    assert_int_equal(decode(obj.p, obj.len - 1, true, false, 0, &back, NULL, why, sizeof why),
                     -EBADMSG);
    assert_non_null(strstr(why, "truncated"));
    obj.p[obj.len / 2] ^= 0x40;
    back.len = 0;
    assert_int_equal(decode(obj.p, obj.len, true, false, 0, &back, NULL, why, sizeof why),
                     -EBADMSG);
    obj.p[obj.len / 2] ^= 0x40;
    /* Not zstd at all. */
    back.len = 0;
    assert_int_equal(decode(p, 1000, true, false, 0, &back, NULL, why, sizeof why), -EBADMSG);
    /* Two frames back to back decode as their concatenation (what `zstd -d` does). */
    uint8_t *two = malloc(2 * obj.len);
    memcpy(two, obj.p, obj.len);
    memcpy(two + obj.len, obj.p, obj.len);
    back.len = 0;
    assert_int_equal(decode(two, 2 * obj.len, true, false, 777, &back, NULL, why, sizeof why), 0);
    assert_int_equal(back.len, 2 * n);
    assert_memory_equal(back.p + n, p, n);
    free(two);
    free(back.p);
    free(obj.p);
    free(p);
}

/* A frame that asks for a 2^28 window is refused (CODEC_ZSTD_MAX_WINDOW_LOG is 27). */
static void test_window_bound(void **state)
{
    (void)state;
    ZSTD_CCtx *z = ZSTD_createCCtx();
    assert_non_null(z);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, 28)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, 0)));
    uint8_t in[1000], out[2000];
    memset(in, 'x', sizeof in);
    ZSTD_inBuffer ib = {in, sizeof in, 0};
    ZSTD_outBuffer ob = {out, sizeof out, 0};
    /* Input first, then end: zstd cannot shrink the window to a size it never learns. */
    assert_false(ZSTD_isError(ZSTD_compressStream2(z, &ob, &ib, ZSTD_e_continue)));
    assert_int_equal(ZSTD_compressStream2(z, &ob, &ib, ZSTD_e_end), 0);
    ZSTD_freeCCtx(z);
    struct test_buf back = {0};
    char why[AGE_ERR_LEN];
    assert_int_equal(decode(out, ob.pos, true, false, 0, &back, NULL, why, sizeof why), -EBADMSG);
    assert_int_equal(back.len, 0);
    /* The same with a 2^27 window decodes. */
    z = ZSTD_createCCtx();
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, 27)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, 0)));
    ib = (ZSTD_inBuffer){in, sizeof in, 0};
    ob = (ZSTD_outBuffer){out, sizeof out, 0};
    /* Input first, then end: zstd cannot shrink the window to a size it never learns. */
    assert_false(ZSTD_isError(ZSTD_compressStream2(z, &ob, &ib, ZSTD_e_continue)));
    assert_int_equal(ZSTD_compressStream2(z, &ob, &ib, ZSTD_e_end), 0);
    ZSTD_freeCCtx(z);
    int rc = decode(out, ob.pos, true, false, 0, &back, NULL, why, sizeof why);
    if (rc != 0)
        fail_msg("window 2^27: %d %s", rc, why);
    assert_int_equal(back.len, sizeof in);
    free(back.p);
}

static void test_options_and_errors(void **state)
{
    (void)state;
    struct codec *c = NULL;
    struct test_buf out = {0};
    struct codec_enc_opts eo = {.zstd = true, .zstd_level = CODEC_ZSTD_MAX_LEVEL + 1};
    assert_int_equal(codec_enc_new(&c, &eo, test_buf_sink, &out), -EINVAL);
    eo.zstd_level = -1;
    assert_int_equal(codec_enc_new(&c, &eo, test_buf_sink, &out), -EINVAL);
    eo = (struct codec_enc_opts){.n_recipients = 1};
    assert_int_equal(codec_enc_new(&c, &eo, test_buf_sink, &out), -EINVAL);
    struct codec_dec_opts dopt = {.n_identities = AGE_MAX_IDENTITIES + 1, .identities = &id};
    assert_int_equal(codec_dec_new(&c, &dopt, test_buf_sink, &out), -EINVAL);
    /* Sink errors come back from write or finish and stick. */
    size_t n = 1u << 20;
    uint8_t *p = json(n);
    out.fail_after = 1;
    int rc = encode(p, n, true, true, 0, &out, NULL);
    assert_int_equal(rc, -ENOSPC);
    /* Wrong identity through the chain. */
    struct test_buf obj = {0}, back = {0};
    assert_int_equal(encode(p, n, true, true, 0, &obj, NULL), 0);
    struct age_identity other;
    assert_int_equal(age_keygen(&other), 0);
    struct codec_dec_opts od = {.zstd = true, .identities = &other, .n_identities = 1};
    assert_int_equal(codec_dec_new(&c, &od, test_buf_sink, &back), 0);
    assert_int_equal(codec_write(c, obj.p, obj.len), -ENOKEY);
    assert_non_null(strstr(codec_error(c), "no identity"));
    assert_int_equal(codec_finish(c, NULL), -ENOKEY);
    codec_free(c);
    age_identity_wipe(&other, 1);
    /* Finish twice, write after finish. */
    eo = (struct codec_enc_opts){.zstd = true};
    out = (struct test_buf){0};
    assert_int_equal(codec_enc_new(&c, &eo, test_buf_sink, &out), 0);
    assert_int_equal(codec_finish(c, NULL), 0);
    assert_int_equal(codec_finish(c, NULL), -EINVAL);
    codec_free(c);
    free(out.p);
    free(obj.p);
    free(back.p);
    free(p);
    codec_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),           cmocka_unit_test(test_no_plain_sha256),
        cmocka_unit_test(test_truncated_and_corrupt), cmocka_unit_test(test_window_bound),
        cmocka_unit_test(test_options_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
