/* sigv4.c - AWS Signature V4 (see sigv4.h): encoding, canonical request, HMAC chain. Never logs
 * and never keeps a secret beyond the call (the derived keys are wiped). */
#include "sigv4.h"

#include <errno.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_ENC_MAX 2048 /* one encoded query key or value */
#define SIGV4_MAX_SIGNED_NAMES 512

static const char hexu[] = "0123456789ABCDEF";
static const char hexl[] = "0123456789abcdef";

static void hex_lower(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexl[b[i] >> 4];
        out[2 * i + 1] = hexl[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if (o + (keep ? 1 : 3) >= out_len)
            return -ENOSPC;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hexu[c >> 4];
            out[o++] = hexu[c & 15];
        }
    }
    if (o >= out_len)
        return -ENOSPC;
    out[o] = '\0';
    return (int)o;
}

struct enc_pair {
    char *k, *v;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct enc_pair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

int sigv4_canonical_query(const struct sigv4_param *p, size_t n, char *out, size_t out_len)
{
    struct enc_pair pairs[SIGV4_MAX_PARAMS];
    size_t o = 0, i;
    int rc = 0;

    if (n > SIGV4_MAX_PARAMS)
        return -E2BIG;
    memset(pairs, 0, sizeof(pairs));
    for (i = 0; i < n; i++) {
        pairs[i].k = malloc(SIGV4_ENC_MAX);
        pairs[i].v = malloc(SIGV4_ENC_MAX);
        if (!pairs[i].k || !pairs[i].v) {
            rc = -ENOMEM;
            goto out;
        }
        if (sigv4_uri_encode(p[i].key, strlen(p[i].key), false, pairs[i].k, SIGV4_ENC_MAX) < 0 ||
            sigv4_uri_encode(p[i].value ? p[i].value : "", p[i].value ? strlen(p[i].value) : 0,
                             false, pairs[i].v, SIGV4_ENC_MAX) < 0) {
            rc = -ENOSPC;
            goto out;
        }
    }
    qsort(pairs, n, sizeof(pairs[0]), pair_cmp);
    if (out_len == 0)
        return -ENOSPC;
    out[0] = '\0';
    for (i = 0; i < n; i++) {
        int w = snprintf(out + o, out_len - o, "%s%s=%s", i ? "&" : "", pairs[i].k, pairs[i].v);
        if (w < 0 || (size_t)w >= out_len - o) {
            rc = -ENOSPC;
            goto out;
        }
        o += (size_t)w;
    }
    rc = (int)o;
out:
    for (i = 0; i < n; i++) {
        free(pairs[i].k);
        free(pairs[i].v);
    }
    return rc;
}

void sigv4_amz_date(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

void sigv4_sha256_hex(const void *data, size_t len, char *out)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    hex_lower(md, sizeof(md), out);
}

/* Appends fmt to out at *o; -ENOSPC when it does not fit. */
static int put(char *out, size_t out_len, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int put(char *out, size_t out_len, size_t *o, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*o >= out_len)
        return -ENOSPC;
    va_start(ap, fmt);
    w = vsnprintf(out + *o, out_len - *o, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= out_len - *o)
        return -ENOSPC;
    *o += (size_t)w;
    return 0;
}

/* A header value trimmed, inner runs of spaces and tabs collapsed to one space. */
static int put_value(char *out, size_t out_len, size_t *o, const char *v)
{
    bool space = false, any = false;

    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = any;
            continue;
        }
        if (space && put(out, out_len, o, " ") != 0)
            return -ENOSPC;
        if (put(out, out_len, o, "%c", *v) != 0)
            return -ENOSPC;
        space = false;
        any = true;
    }
    return 0;
}

static int hdr_cmp(const void *a, const void *b)
{
    const struct sigv4_header *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static bool valid_date(const char *d)
{
    if (!d || strlen(d) != SIGV4_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return false;
    return true;
}

static int hmac(const void *key, size_t key_len, const char *msg, unsigned char *md)
{
    unsigned int md_len = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), md,
                &md_len) &&
                   md_len == SHA256_DIGEST_LENGTH
               ? 0
               : -EIO;
}

int sigv4_sign(const struct sigv4_key *k, const struct sigv4_request *r, char *auth,
               size_t auth_len, char *canonical, size_t canonical_len)
{
    const struct sigv4_header *sorted[SIGV4_MAX_HEADERS];
    char signed_names[SIGV4_MAX_SIGNED_NAMES], date[9], scope[256], hash[SIGV4_HEX_LEN + 1];
    char sig[SIGV4_HEX_LEN + 1], *canon = NULL, *sts = NULL, *secret = NULL;
    unsigned char kd[SHA256_DIGEST_LENGTH], kt[SHA256_DIGEST_LENGTH];
    size_t canon_cap = 16384, o = 0, sn = 0, i;
    int rc = -ENOSPC;

    if (!k || !r || !k->access_key || !k->secret_key || !k->region || !k->service || !r->method ||
        !r->path || !r->payload_hash || !valid_date(r->amz_date) || !auth)
        return -EINVAL;
    if (r->n_headers > SIGV4_MAX_HEADERS)
        return -E2BIG;
    for (i = 0; i < r->n_headers; i++) {
        const char *n = r->headers[i].name;
        if (!n || !n[0] || !r->headers[i].value)
            return -EINVAL;
        for (; *n; n++)
            if (*n >= 'A' && *n <= 'Z')
                return -EINVAL;
        sorted[i] = &r->headers[i];
    }
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers is sorted */
    qsort(sorted, r->n_headers, sizeof(sorted[0]), hdr_cmp);
    for (i = 0; i + 1 < r->n_headers; i++)
        if (strcmp(sorted[i]->name, sorted[i + 1]->name) == 0)
            return -EINVAL;
    canon = malloc(canon_cap);
    if (!canon)
        return -ENOMEM;
    signed_names[0] = '\0';
    if (put(canon, canon_cap, &o, "%s\n%s\n%s\n", r->method, r->path, r->query ? r->query : "") !=
        0)
        goto out;
    for (i = 0; i < r->n_headers; i++) {
        if (put(canon, canon_cap, &o, "%s:", sorted[i]->name) != 0 ||
            put_value(canon, canon_cap, &o, sorted[i]->value) != 0 ||
            put(canon, canon_cap, &o, "\n") != 0 ||
            put(signed_names, sizeof(signed_names), &sn, "%s%s", i ? ";" : "", sorted[i]->name) !=
                0)
            goto out;
    }
    if (put(canon, canon_cap, &o, "\n%s\n%s", signed_names, r->payload_hash) != 0)
        goto out;
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    {
        int w =
            snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, k->region, k->service);
        if (w < 0 || (size_t)w >= sizeof(scope))
            goto out;
    }
    sigv4_sha256_hex(canon, o, hash);
    {
        size_t sts_len =
            strlen(SIGV4_ALGORITHM) + SIGV4_DATE_LEN + strlen(scope) + SIGV4_HEX_LEN + 8;
        size_t so = 0, sl = strlen(k->secret_key) + 5;
        sts = malloc(sts_len);
        secret = malloc(sl);
        if (!sts || !secret) {
            rc = -ENOMEM;
            goto out;
        }
        if (put(sts, sts_len, &so, "%s\n%s\n%s\n%s", SIGV4_ALGORITHM, r->amz_date, scope, hash) !=
            0)
            goto out;
        so = 0;
        if (put(secret, sl, &so, "AWS4%s", k->secret_key) != 0)
            goto out;
        if (hmac(secret, so, date, kd) != 0 || hmac(kd, sizeof(kd), k->region, kt) != 0 ||
            hmac(kt, sizeof(kt), k->service, kd) != 0 ||
            hmac(kd, sizeof(kd), "aws4_request", kt) != 0 || hmac(kt, sizeof(kt), sts, kd) != 0) {
            rc = -EIO;
            goto out;
        }
        OPENSSL_cleanse(secret, sl);
    }
    hex_lower(kd, sizeof(kd), sig);
    o = 0;
    if (put(auth, auth_len, &o, "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
            SIGV4_ALGORITHM, k->access_key, scope, signed_names, sig) != 0)
        goto out;
    if (canonical) {
        size_t cl = strlen(canon);
        if (cl >= canonical_len)
            goto out;
        memcpy(canonical, canon, cl + 1);
    }
    rc = 0;
out:
    OPENSSL_cleanse(kd, sizeof(kd));
    OPENSSL_cleanse(kt, sizeof(kt));
    if (secret) {
        OPENSSL_cleanse(secret, strlen(k->secret_key) + 5);
        free(secret);
    }
    free(sts);
    free(canon);
    return rc;
}
