/* test_age.c - common/age.c: round trips at chunk boundaries with several write patterns,
 * several recipients, wrong identity, tampering (header, MAC, nonce, body, tag), truncation
 * at many points (never reported complete), a chunk after the final one, armored, scrypt and
 * ssh stanzas refused, header syntax and size bounds, key files, misuse and sink errors.
 * Interop with the age tool is tests/e2e/age_interop.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "age.h"
#include "bounds.h"
#include "testutil.h"

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 2654435761u) >> 13);
    return p;
}

static struct age_identity ids[3];
static struct age_recipient rcps[3];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        if (age_keygen(&ids[i]) != 0)
            return -1;
        age_identity_recipient(&ids[i], &rcps[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    age_identity_wipe(ids, 3);
    return 0;
}

/* Encrypts in pieces of `piece` bytes (0: one write). */
static struct test_buf encrypt(const uint8_t *pt, size_t n, const struct age_recipient *r,
                               size_t nr, size_t piece)
{
    struct test_buf out = {0};
    struct age_enc *e = NULL;
    assert_int_equal(age_enc_new(&e, r, nr, test_buf_sink, &out), 0);
    assert_int_equal(out.len, 0); /* nothing before the first write */
    size_t step = piece ? piece : (n ? n : 1);
    for (size_t o = 0; o < n; o += step)
        assert_int_equal(age_enc_write(e, pt + o, n - o < step ? n - o : step), 0);
    assert_int_equal(age_enc_finish(e), 0);
    age_enc_free(e);
    return out;
}

/* Decrypts in pieces; returns the first error of write or finish (0: complete). */
static int decrypt(const uint8_t *ct, size_t n, const struct age_identity *id, size_t ni,
                   size_t piece, struct test_buf *out, char *why, size_t whylen)
{
    struct age_dec *d = NULL;
    assert_int_equal(age_dec_new(&d, id, ni, test_buf_sink, out), 0);
    size_t step = piece ? piece : (n ? n : 1);
    int rc = 0;
    for (size_t o = 0; o < n && rc == 0; o += step)
        rc = age_dec_write(d, ct + o, n - o < step ? n - o : step);
    if (rc == 0)
        rc = age_dec_finish(d);
    if (why)
        snprintf(why, whylen, "%s", age_dec_error(d));
    age_dec_free(d);
    return rc;
}

static size_t header_len(const struct test_buf *b)
{
    const uint8_t *m = memmem(b->p, b->len, "\n--- ", 5);
    assert_non_null(m);
    const uint8_t *nl = memchr(m + 1, '\n', b->len - (size_t)(m + 1 - b->p));
    assert_non_null(nl);
    return (size_t)(nl + 1 - b->p);
}

static void test_round_trips(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,     1,      1000,   65535,     65536,
                                   65537, 131072, 131073, 3 * 65536, 3 * 65536 + 1};
    static const size_t pieces[] = {0, 1, 7777, 65536, 65552, 100000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        uint8_t *pt = pattern(n);
        for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
            if (pieces[p] == 1 && n > 70000)
                continue; /* byte-wise only for the small ones (speed under valgrind) */
            struct test_buf ct = encrypt(pt, n, rcps, 1, pieces[p]);
            size_t chunks = n ? (n + AGE_CHUNK - 1) / AGE_CHUNK : 1;
            assert_int_equal(ct.len, header_len(&ct) + 16 + n + 16 * chunks);
            for (size_t q = 0; q < sizeof pieces / sizeof *pieces; q++) {
                if (pieces[q] == 1 && n > 70000)
                    continue;
                struct test_buf out = {0};
                char why[AGE_ERR_LEN];
                int rc = decrypt(ct.p, ct.len, ids, 1, pieces[q], &out, why, sizeof why);
                if (rc != 0)
                    fail_msg("size %zu pieces %zu/%zu: %d %s", n, pieces[p], pieces[q], rc, why);
                assert_int_equal(out.len, n);
                if (n)
                    assert_memory_equal(out.p, pt, n);
                free(out.p);
            }
            free(ct.p);
        }
        free(pt);
    }
}

static void test_recipients(void **state)
{
    (void)state;
    uint8_t *pt = pattern(70000);
    struct test_buf ct = encrypt(pt, 70000, rcps, 3, 0);
    for (int i = 0; i < 3; i++) {
        struct test_buf out = {0};
        assert_int_equal(decrypt(ct.p, ct.len, &ids[i], 1, 0, &out, NULL, 0), 0);
        assert_int_equal(out.len, 70000);
        assert_memory_equal(out.p, pt, 70000);
        free(out.p);
    }
    /* Wrong identity: ENOKEY, nothing written. */
    struct age_identity other;
    char why[AGE_ERR_LEN];
    assert_int_equal(age_keygen(&other), 0);
    struct test_buf out = {0};
    assert_int_equal(decrypt(ct.p, ct.len, &other, 1, 0, &out, why, sizeof why), -ENOKEY);
    assert_int_equal(out.len, 0);
    assert_non_null(strstr(why, "no identity matches"));
    /* With the right one among several. */
    struct age_identity two[2] = {other, ids[2]};
    assert_int_equal(decrypt(ct.p, ct.len, two, 2, 0, &out, NULL, 0), 0);
    assert_int_equal(out.len, 70000);
    free(out.p);
    age_identity_wipe(&other, 1);
    age_identity_wipe(two, 2);
    free(ct.p);
    free(pt);
}

static void test_tamper(void **state)
{
    (void)state;
    size_t n = 2 * 65536 + 100;
    uint8_t *pt = pattern(n);
    struct test_buf ct = encrypt(pt, n, rcps, 2, 0);
    size_t hl = header_len(&ct);
    char why[AGE_ERR_LEN];
    /* Every header byte, the payload nonce, and bytes in each chunk and tag. */
    size_t pos[64], np = 0;
    for (size_t i = 0; i < hl + 16; i += (i < hl ? 3 : 1))
        if (np < 40)
            pos[np++] = i;
    size_t c0 = hl + 16, c1 = c0 + AGE_CHUNK + 16, c2 = c1 + AGE_CHUNK + 16;
    size_t extra[] = {hl - 2,  hl - 10, hl + 15, c0, c0 + 100,    c1 - 1,
                      c1 - 16, c1,      c2 - 1,  c2, ct.len - 17, ct.len - 1};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        pos[np++] = extra[i];
    for (size_t i = 0; i < np; i++) {
        struct test_buf out = {0};
        ct.p[pos[i]] ^= 0x01;
        int rc = decrypt(ct.p, ct.len, ids, 1, 0, &out, why, sizeof why);
        ct.p[pos[i]] ^= 0x01;
        if (rc == 0)
            fail_msg("flipped byte %zu (header %zu) went unnoticed", pos[i], hl);
        if (pos[i] >= hl)
            assert_int_equal(rc, -EBADMSG);
        /* Plaintext reached the sink only for chunks before the tampered one. */
        if (pos[i] >= c0)
            assert_true(out.len <= (pos[i] - c0) / (AGE_CHUNK + 16) * AGE_CHUNK);
        free(out.p);
    }
    /* The MAC itself, and a stanza added in front of the MAC line: MAC mismatch. */
    struct test_buf out = {0};
    ct.p[hl - 5] ^= 0x01;
    assert_int_equal(decrypt(ct.p, ct.len, ids, 1, 0, &out, why, sizeof why), -EBADMSG);
    ct.p[hl - 5] ^= 0x01;
    assert_non_null(strstr(why, "MAC"));
    const uint8_t *mac = memmem(ct.p, ct.len, "\n--- ", 5);
    size_t at = (size_t)(mac - ct.p) + 1;
    static const char grease[] = "-> grease x\nAAAA\n";
    uint8_t *g = malloc(ct.len + sizeof grease);
    memcpy(g, ct.p, at);
    memcpy(g + at, grease, sizeof grease - 1);
    memcpy(g + at + sizeof grease - 1, ct.p + at, ct.len - at);
    assert_int_equal(decrypt(g, ct.len + sizeof grease - 1, ids, 1, 0, &out, why, sizeof why),
                     -EBADMSG);
    assert_non_null(strstr(why, "MAC"));
    assert_int_equal(out.len, 0);
    free(g);
    free(ct.p);
    free(pt);
}

static void test_truncation(void **state)
{
    (void)state;
    size_t n = 2 * 65536 + 100;
    uint8_t *pt = pattern(n);
    struct test_buf ct = encrypt(pt, n, rcps, 1, 0);
    size_t hl = header_len(&ct), c0 = hl + 16, c1 = c0 + AGE_CHUNK + 16, c2 = c1 + AGE_CHUNK + 16;
    size_t cuts[] = {0,      1,      10,      hl - 1,  hl,        hl + 1, hl + 15,
                     c0,     c0 + 1, c0 + 16, c1 - 1,  c1,        c1 + 1, c1 + 16,
                     c2 - 1, c2,     c2 + 1,  c2 + 16, ct.len - 1};
    char why[AGE_ERR_LEN];
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        struct test_buf out = {0};
        int rc = decrypt(ct.p, cuts[i], ids, 1, 0, &out, why, sizeof why);
        if (rc != -EBADMSG)
            fail_msg("cut at %zu of %zu: rc %d (%s)", cuts[i], ct.len, rc, why);
        assert_true(out.len < n);
        free(out.p);
    }
    /* Exactly at a chunk boundary: the message names the missing final chunk. */
    struct test_buf out = {0};
    assert_int_equal(decrypt(ct.p, c2, ids, 1, 0, &out, why, sizeof why), -EBADMSG);
    assert_non_null(strstr(why, "final chunk is missing"));
    assert_int_equal(out.len, AGE_CHUNK); /* the held second chunk is never released */
    free(out.p);
    free(ct.p);
    /* A full final chunk (n = 64 KiB) followed by more bytes: a chunk after the last. */
    ct = encrypt(pt, AGE_CHUNK, rcps, 1, 0);
    uint8_t *more = malloc(ct.len + 40);
    memcpy(more, ct.p, ct.len);
    memset(more + ct.len, 0x5a, 40);
    out = (struct test_buf){0};
    assert_int_equal(decrypt(more, ct.len + 40, ids, 1, 0, &out, why, sizeof why), -EBADMSG);
    assert_non_null(strstr(why, "after the final chunk"));
    assert_int_equal(out.len, 0);
    free(more);
    /* A short final chunk with bytes appended fails authentication. */
    free(ct.p);
    ct = encrypt(pt, 10, rcps, 1, 0);
    more = malloc(ct.len + 1);
    memcpy(more, ct.p, ct.len);
    more[ct.len] = 0;
    assert_int_equal(decrypt(more, ct.len + 1, ids, 1, 0, &out, why, sizeof why), -EBADMSG);
    free(more);
    free(out.p);
    free(ct.p);
    free(pt);
}

static int dec_text(const char *s, char *why, size_t whylen)
{
    struct test_buf out = {0};
    int rc = decrypt((const uint8_t *)s, strlen(s), ids, 1, 0, &out, why, whylen);
    free(out.p);
    return rc;
}

#define MAC43 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define KEY43 "6y1ZAyZJ4nwFkX2Y5uGT0Qm7ZKhzcI5sKxRrNHUW0XI"

static void test_refused_formats(void **state)
{
    (void)state;
    char why[AGE_ERR_LEN];
    assert_int_equal(
        dec_text("-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24u\n", why, sizeof why),
        -EPROTONOSUPPORT);
    assert_non_null(strstr(why, "armored"));
    assert_int_equal(dec_text("\n  -----BEGIN AGE ENCRYPTED FILE-----\n", why, sizeof why),
                     -EPROTONOSUPPORT);
    assert_int_equal(dec_text("age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 18\n" KEY43
                              "\n--- " MAC43 "\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                              why, sizeof why),
                     -EPROTONOSUPPORT);
    assert_non_null(strstr(why, "scrypt"));
    assert_int_equal(dec_text("age-encryption.org/v1\n-> ssh-ed25519 Ab12Cd " KEY43 "\n" KEY43
                              "\n--- " MAC43 "\n",
                              why, sizeof why),
                     -EPROTONOSUPPORT);
    assert_non_null(strstr(why, "ssh-ed25519"));
    assert_int_equal(dec_text("age-encryption.org/v2\n", why, sizeof why), -EPROTONOSUPPORT);
    assert_int_equal(dec_text("hello world, not age\n", why, sizeof why), -EBADMSG);
    assert_int_equal(dec_text("", why, sizeof why), -EBADMSG);
    assert_int_equal(dec_text("age-encryption.org/v1\n", why, sizeof why), -EBADMSG);
    assert_non_null(strstr(why, "truncated"));
}

/* Header syntax: each malformed header is refused by the parser with -EBADMSG. */
static void test_header_syntax(void **state)
{
    (void)state;
    static const char *bad[] = {
        "age-encryption.org/v1\n--- " MAC43 "\n",                            /* no stanza */
        "age-encryption.org/v1\n-> X25519 " KEY43 "\n" KEY43 "\n---\n",      /* no MAC */
        "age-encryption.org/v1\n-> X25519 " KEY43 "\n" KEY43 "\n--- AAAA\n", /* short MAC */
        "age-encryption.org/v1\n->  X25519 " KEY43 "\n" KEY43 "\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> X25519  " KEY43 "\n" KEY43 "\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> X25519 " KEY43 " \n" KEY43 "\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> \n\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> X25519 " KEY43 "\n" KEY43 "=\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> X25519 6y1ZAyZJ4nwFkX2Y5uGT0Qm7ZKhzcI5sKxRrNHUW0XJ\n" KEY43
        "\n--- " MAC43 "\n", /* non-canonical trailing bits */
        "age-encryption.org/v1\n-> X25519 " KEY43 "\n" KEY43 "\n--- " MAC43 "x\n",
        "age-encryption.org/v1\n-> X25519 " KEY43 " extra\n" KEY43 "\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> X25519 " KEY43 "\nAAAA\n--- " MAC43 "\n", /* short body */
        /* a 48-byte body fills a 64-column line and needs an empty line after it */
        "age-encryption.org/v1\n-> x\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> x\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n--- " MAC43 "\n",
        "age-encryption.org/v1\n-> x\n\ngarbage\n",
        "age-encryption.org/v1\n-> x\xff\n",
    };
    struct age_header *h = malloc(sizeof *h);
    char why[AGE_ERR_LEN];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = age_header_parse((const uint8_t *)bad[i], strlen(bad[i]), h, why, sizeof why);
        if (rc != -EBADMSG)
            fail_msg("header %zu: rc %d (%s)", i, rc, why);
    }
    assert_true(
        age_header_parse((const uint8_t *)"age-encryption.org/v1\r\n", 23, h, why, sizeof why) < 0);
    /* Valid: a grease stanza with an empty body, a 48-byte body with its empty line, and an
     * X25519 stanza; the parser counts and records them. */
    const char *ok = "age-encryption.org/v1\n-> grease-1 a b\n\n-> y\n"
                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n"
                     "-> X25519 " KEY43 "\n" KEY43 "\n--- " MAC43 "\npayload";
    assert_int_equal(age_header_parse((const uint8_t *)ok, strlen(ok), h, why, sizeof why), 0);
    assert_int_equal(h->n_stanzas, 3);
    assert_int_equal(h->n_x25519, 1);
    assert_string_equal(h->other_type, "grease-1");
    assert_int_equal(h->len, strlen(ok) - strlen("payload"));
    assert_int_equal(h->mac_input_len, h->len - 1 - 44);
    /* Every proper prefix asks for more. */
    for (size_t i = 0; i < h->len; i++)
        assert_int_equal(age_header_parse((const uint8_t *)ok, i, h, why, sizeof why), -EAGAIN);
    free(h);
}

static void test_header_bounds(void **state)
{
    (void)state;
    char why[AGE_ERR_LEN];
    /* Stanzas without end: E2BIG once AGE_MAX_STANZAS or AGE_MAX_HEADER is passed. */
    size_t cap = AGE_MAX_HEADER + 4096;
    char *s = malloc(cap + 1);
    size_t o = (size_t)snprintf(s, cap, "age-encryption.org/v1\n");
    while (o + 12 < cap)
        o += (size_t)snprintf(s + o, cap - o, "-> a\nAAAA\n");
    struct age_dec *d = NULL;
    struct test_buf out = {0};
    assert_int_equal(age_dec_new(&d, ids, 1, test_buf_sink, &out), 0);
    int rc = 0;
    for (size_t i = 0; i < o && rc == 0; i += 1000)
        rc = age_dec_write(d, s + i, o - i < 1000 ? o - i : 1000);
    assert_int_equal(rc, -E2BIG);
    assert_non_null(strstr(age_dec_error(d), "stanzas"));
    age_dec_free(d);
    /* One long line with no newline. */
    memset(s, 'A', cap);
    memcpy(s, "age-encryption.org/v1\n-> ", 25);
    assert_int_equal(age_dec_new(&d, ids, 1, test_buf_sink, &out), 0);
    rc = 0;
    for (size_t i = 0; i < cap && rc == 0; i += 4096)
        rc = age_dec_write(d, s + i, cap - i < 4096 ? cap - i : 4096);
    assert_int_equal(rc, -E2BIG);
    snprintf(why, sizeof why, "%s", age_dec_error(d));
    assert_non_null(strstr(why, "header longer"));
    age_dec_free(d);
    free(s);
}

static void test_key_files(void **state)
{
    (void)state;
    char r0[AGE_RECIPIENT_STRLEN + 1], r1[AGE_RECIPIENT_STRLEN + 1], i0[AGE_IDENTITY_STRLEN + 1];
    char text[1024], err[AGE_ERR_LEN];
    struct age_recipient rs[4];
    struct age_identity is[4];
    size_t n = 0;
    assert_int_equal(age_recipient_format(&rcps[0], r0, sizeof r0), 0);
    assert_int_equal(age_recipient_format(&rcps[1], r1, sizeof r1), 0);
    assert_int_equal(age_identity_format(&ids[0], i0, sizeof i0), 0);
    snprintf(text, sizeof text, "# backup keys\n\n  %s  \r\n# ops team\n%s\n", r0, r1);
    assert_int_equal(age_recipients_parse_text(text, strlen(text), rs, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(rs[1].pk, rcps[1].pk, 32);
    /* A bad line is named. */
    snprintf(text, sizeof text, "%s\n# c\nage1qqqq\n", r0);
    assert_int_equal(age_recipients_parse_text(text, strlen(text), rs, 4, &n, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "line 3"));
    snprintf(text, sizeof text, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI foo\n");
    assert_int_equal(age_recipients_parse_text(text, strlen(text), rs, 4, &n, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "line 1: ssh keys"));
    /* Empty, only comments, too many. */
    assert_int_equal(age_recipients_parse_text("", 0, rs, 4, &n, err, sizeof err), -EINVAL);
    assert_int_equal(age_recipients_parse_text("# x\n\n", 5, rs, 4, &n, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no age1"));
    snprintf(text, sizeof text, "%s\n%s\n%s\n", r0, r1, r0);
    assert_int_equal(age_recipients_parse_text(text, strlen(text), rs, 2, &n, err, sizeof err),
                     -E2BIG);
    assert_non_null(strstr(err, "line 3"));
    /* An identity file as age-keygen writes it, loaded from disk. */
    char path[] = "/tmp/test_age_key.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int l = snprintf(text, sizeof text, "# created: 2026-12-03T22:02:50Z\n# public key: %s\n%s\n",
                     r0, i0);
    assert_int_equal(write(fd, text, (size_t)l), l);
    close(fd);
    assert_int_equal(age_identities_load(path, is, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(&is[0], &ids[0], sizeof is[0]);
    /* A recipient where an identity belongs: the error names the line, never the key. */
    snprintf(text, sizeof text, "# x\n%s\n", r0);
    assert_int_equal(age_identities_parse_text(text, strlen(text), is, 4, &n, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "line 2"));
    char broken[AGE_IDENTITY_STRLEN + 1];
    memcpy(broken, i0, sizeof broken);
    broken[40] = broken[40] == 'Q' ? 'P' : 'Q';
    snprintf(text, sizeof text, "%s\n", broken);
    assert_int_equal(age_identities_parse_text(text, strlen(text), is, 4, &n, err, sizeof err),
                     -EINVAL);
    assert_null(strstr(err, broken + 16));
    assert_int_equal(age_identities_load("/nonexistent/key", is, 4, &n, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/key"));
    /* A line longer than the bound. */
    char *lng = malloc(AGE_MAX_KEY_LINE + 2);
    memset(lng, 'a', AGE_MAX_KEY_LINE + 1);
    lng[AGE_MAX_KEY_LINE + 1] = '\n';
    assert_int_equal(
        age_recipients_parse_text(lng, AGE_MAX_KEY_LINE + 2, rs, 4, &n, err, sizeof err), -E2BIG);
    free(lng);
    unlink(path);
    age_identity_wipe(is, 4);
}

static void test_misuse_and_sink_errors(void **state)
{
    (void)state;
    struct age_enc *e = NULL;
    struct age_dec *d = NULL;
    struct test_buf out = {0};
    assert_int_equal(age_enc_new(&e, rcps, 0, test_buf_sink, &out), -EINVAL);
    assert_int_equal(age_enc_new(&e, rcps, AGE_MAX_RECIPIENTS + 1, test_buf_sink, &out), -EINVAL);
    assert_int_equal(age_dec_new(&d, ids, 0, test_buf_sink, &out), -EINVAL);
    /* A low-order (all-zero) recipient key is refused. */
    struct age_recipient zero = {{0}};
    assert_int_equal(age_enc_new(&e, &zero, 1, test_buf_sink, &out), -EINVAL);
    assert_null(e);
    /* Write after finish. */
    assert_int_equal(age_enc_new(&e, rcps, 1, test_buf_sink, &out), 0);
    assert_int_equal(age_enc_finish(e), 0);
    assert_int_equal(age_enc_write(e, "x", 1), -EINVAL);
    assert_int_equal(age_enc_finish(e), -EINVAL);
    age_enc_free(e);
    /* The sink's error comes back and sticks. */
    uint8_t *pt = pattern(300000);
    out.len = 0;
    out.fail_after = 3;
    assert_int_equal(age_enc_new(&e, rcps, 1, test_buf_sink, &out), 0);
    int rc = age_enc_write(e, pt, 300000);
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(age_enc_write(e, pt, 10), -ENOSPC);
    assert_int_equal(age_enc_finish(e), -ENOSPC);
    age_enc_free(e);
    free(out.p);
    out = (struct test_buf){0};
    struct test_buf ct = encrypt(pt, 300000, rcps, 1, 0);
    out.fail_after = 2;
    assert_int_equal(decrypt(ct.p, ct.len, ids, 1, 0, &out, NULL, 0), -ENOSPC);
    free(out.p);
    free(ct.p);
    free(pt);
    age_enc_free(NULL);
    age_dec_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_recipients),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_refused_formats),
        cmocka_unit_test(test_header_syntax),
        cmocka_unit_test(test_header_bounds),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_misuse_and_sink_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
