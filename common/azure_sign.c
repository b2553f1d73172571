/* azure_sign.c - the Blob service's Shared Key string-to-sign and HMAC-SHA256 signature, the
 * account settings from env, and small helpers (x-ms-date, block IDs, URLs without their query)
 * for store_azure.c. No I/O besides getenv. */
#include "azure_sign.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "array.h"
#include "base64.h"
#include "errbuf.h"
#include "hex.h"

/* the standard headers of the string-to-sign, in order */
static const char *const std_headers[] = {
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
};
#define N_STD ARRAY_SIZE(std_headers)

struct out_buf {
    char *p;
    size_t len, used;
    bool full;
};

static void put(struct out_buf *o, const char *s, size_t n)
{
    if (o->full || n >= o->len - o->used) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->used, s, n);
    o->used += n;
    o->p[o->used] = '\0';
}

static void puts_(struct out_buf *o, const char *s)
{
    put(o, s, strlen(s));
}

/* percent-decodes [s, s+n) into o; '+' stays '+' (as Python's unquote) */
static int put_decoded(struct out_buf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -EINVAL;
            hi = hex_value(s[i + 1]);
            lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        put(o, &c, 1);
    }
    return 0;
}

struct qparam {
    const char *name, *value;
    size_t nlen, vlen;
};

static int qcmp_name(const struct qparam *a, const struct qparam *b)
{
    size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
    int c = strncasecmp(a->name, b->name, n);
    return c != 0 ? c : (a->nlen > b->nlen) - (a->nlen < b->nlen);
}

static int qcmp(const void *pa, const void *pb)
{
    const struct qparam *a = pa, *b = pb;
    int c = qcmp_name(a, b);
    size_t n;

    if (c != 0)
        return c;
    n = a->vlen < b->vlen ? a->vlen : b->vlen;
    c = memcmp(a->value, b->value, n);
    return c != 0 ? c : (a->vlen > b->vlen) - (a->vlen < b->vlen);
}

static int hcmp(const void *pa, const void *pb)
{
    const struct azure_header *a = *(const struct azure_header *const *)pa;
    const struct azure_header *b = *(const struct azure_header *const *)pb;
    return strcasecmp(a->name, b->name);
}

int azure_string_to_sign(const char *verb, const char *account, const char *path, const char *query,
                         const struct azure_header *headers, size_t n_headers, char *out,
                         size_t outlen)
{
    const char *std_val[N_STD] = {NULL};
    const struct azure_header *xms[AZURE_MAX_SIGN_HEADERS];
    struct qparam q[AZURE_MAX_SIGN_HEADERS];
    struct out_buf o = {out, outlen, 0, false};
    size_t n_xms = 0, n_q = 0;

    if (verb == NULL || account == NULL || path == NULL || path[0] != '/' || out == NULL ||
        outlen == 0 || (headers == NULL && n_headers > 0))
        return -EINVAL;
    out[0] = '\0';
    for (size_t i = 0; i < n_headers; i++) {
        const char *name = headers[i].name;
        bool found = false;

        if (name == NULL || headers[i].value == NULL)
            return -EINVAL;
        for (size_t k = 0; k < N_STD; k++) {
            if (strcasecmp(name, std_headers[k]) == 0) {
                if (std_val[k] != NULL)
                    return -EINVAL;
                std_val[k] = headers[i].value;
                found = true;
            }
        }
        if (found || strncasecmp(name, "x-ms-", 5) != 0)
            continue;
        for (const char *c = name; *c != '\0'; c++) {
            if (!isalnum((unsigned char)*c) && *c != '-')
                return -EINVAL;
        }
        if (n_xms == AZURE_MAX_SIGN_HEADERS)
            return -ENOSPC;
        xms[n_xms++] = &headers[i];
    }
    qsort(xms, n_xms, sizeof(const struct azure_header *), hcmp);
    for (size_t i = 1; i < n_xms; i++) {
        if (strcasecmp(xms[i]->name, xms[i - 1]->name) == 0)
            return -EINVAL;
    }

    puts_(&o, verb);
    puts_(&o, "\n");
    for (size_t k = 0; k < N_STD; k++) {
        const char *v = std_val[k];
        /* Content-Length: empty for 0 (versions from 2015-02-21) */
        if (v != NULL && !(k == 2 && strcmp(v, "0") == 0))
            puts_(&o, v);
        puts_(&o, "\n");
    }
    for (size_t i = 0; i < n_xms; i++) {
        for (const char *c = xms[i]->name; *c != '\0'; c++) {
            char l = (char)tolower((unsigned char)*c);
            put(&o, &l, 1);
        }
        puts_(&o, ":");
        puts_(&o, xms[i]->value);
        puts_(&o, "\n");
    }
    puts_(&o, "/");
    puts_(&o, account);
    puts_(&o, path);

    if (query != NULL && query[0] != '\0') {
        const char *p = query;
        for (;;) {
            const char *amp = strchr(p, '&'), *eq;
            size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);
            if (n > 0) {
                if (n_q == AZURE_MAX_SIGN_HEADERS)
                    return -ENOSPC;
                eq = memchr(p, '=', n);
                q[n_q].name = p;
                q[n_q].nlen = eq != NULL ? (size_t)(eq - p) : n;
                q[n_q].value = eq != NULL ? eq + 1 : p + n;
                q[n_q].vlen = eq != NULL ? n - q[n_q].nlen - 1 : 0;
                n_q++;
            }
            if (amp == NULL)
                break;
            p = amp + 1;
        }
        qsort(q, n_q, sizeof q[0], qcmp);
        for (size_t i = 0; i < n_q; i++) {
            if (i > 0 && qcmp_name(&q[i], &q[i - 1]) == 0) {
                puts_(&o, ",");
            } else {
                puts_(&o, "\n");
                for (size_t c = 0; c < q[i].nlen; c++) {
                    char l = (char)tolower((unsigned char)q[i].name[c]);
                    put(&o, &l, 1);
                }
                puts_(&o, ":");
            }
            if (put_decoded(&o, q[i].value, q[i].vlen) != 0)
                return -EINVAL;
        }
    }
    return o.full ? -ENOSPC : 0;
}

int azure_sign(const char *account, const uint8_t *key, size_t key_len, const char *string_to_sign,
               char *auth, size_t authlen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char b64[BASE64_PADDED_LEN(EVP_MAX_MD_SIZE) + 1];
    int w;

    if (account == NULL || key == NULL || key_len == 0 || string_to_sign == NULL || auth == NULL)
        return -EINVAL;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)string_to_sign,
             strlen(string_to_sign), mac, &mac_len) == NULL)
        return -EIO;
    b64[base64_encode(mac, mac_len, b64, true)] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
    w = snprintf(auth, authlen, "SharedKey %s:%s", account, b64);
    return w < 0 || (size_t)w >= authlen ? -ENOSPC : 0;
}

int azure_key_decode(const char *b64, uint8_t *out, size_t outlen)
{
    size_t n = b64 != NULL ? strlen(b64) : 0;
    uint8_t tmp[3 * (AZURE_MAX_KEY_B64 / 4)];
    long got;

    if (n == 0 || n > AZURE_MAX_KEY_B64)
        return -EINVAL;
    got = base64_decode(b64, n, tmp, sizeof tmp, true);
    if (got <= 0 || (size_t)got > outlen) {
        OPENSSL_cleanse(tmp, sizeof tmp);
        return -EINVAL;
    }
    memcpy(out, tmp, (size_t)got);
    OPENSSL_cleanse(tmp, sizeof tmp);
    return (int)got;
}

int azure_date(time_t t, char *out, size_t outlen)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    int w;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11)
        return -EINVAL;
    /* not strftime: %a/%b follow the locale */
    w = snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return w < 0 || (size_t)w >= outlen ? -EINVAL : 0;
}

void azure_block_id(uint32_t index, char out[29])
{
    char raw[24];

    snprintf(raw, sizeof raw, "block-%09u", (unsigned)(index % 1000000000u));
    out[base64_encode((const uint8_t *)raw, 15, out, true)] = '\0'; /* 20 characters */
}

static bool account_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n >= AZURE_MAX_ACCOUNT)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

int azure_account_from_env(const char *account, struct azure_account *a, char *err, size_t errlen)
{
    const char *env_account = getenv("AZURE_STORAGE_ACCOUNT");
    const char *key = getenv("AZURE_STORAGE_KEY");
    const char *sas = getenv("AZURE_STORAGE_SAS_TOKEN");
    const char *ep = getenv("AZURE_STORAGE_BLOB_ENDPOINT");
    int w, n;

    if (a == NULL)
        return -EINVAL;
    memset(a, 0, sizeof *a);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (account == NULL || !account_name_ok(account)) {
        errbuf_set(err, errlen,
                   "azure: account name \"%.*s\" is not 3-24 lower-case letters or digits", 32,
                   account != NULL ? account : "");
        return -EINVAL;
    }
    if (env_account != NULL && env_account[0] != '\0' && strcmp(env_account, account) != 0) {
        errbuf_set(err, errlen,
                   "azure: AZURE_STORAGE_ACCOUNT (%.*s) differs from the URL's account (%s)", 32,
                   env_account, account);
        return -EINVAL;
    }
    snprintf(a->account, sizeof a->account, "%s", account);
    if (key != NULL && key[0] != '\0') {
        n = azure_key_decode(key, a->key, sizeof a->key);
        if (n <= 0) {
            errbuf_set(err, errlen,
                       "azure: AZURE_STORAGE_KEY is not a base64 key of at most 64 bytes");
            azure_account_clear(a);
            return -EINVAL;
        }
        a->key_len = (size_t)n;
    } else if (sas != NULL && sas[0] != '\0') {
        if (sas[0] == '?')
            sas++;
        if (strlen(sas) >= sizeof a->sas || strpbrk(sas, " \t\r\n#") != NULL) {
            errbuf_set(err, errlen, "azure: AZURE_STORAGE_SAS_TOKEN is malformed or over %d bytes",
                       AZURE_MAX_SAS - 1);
            azure_account_clear(a);
            return -EINVAL;
        }
        snprintf(a->sas, sizeof a->sas, "%s", sas);
    } else {
        errbuf_set(err, errlen, "azure: set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN");
        return -ENOENT;
    }
    if (ep != NULL && ep[0] != '\0') {
        size_t l = strlen(ep);
        while (l > 0 && ep[l - 1] == '/')
            l--;
        if ((strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) ||
            l >= sizeof a->endpoint || memchr(ep, '?', l) != NULL) {
            errbuf_set(err, errlen,
                       "azure: AZURE_STORAGE_BLOB_ENDPOINT must be an http(s) URL without a query");
            azure_account_clear(a);
            return -EINVAL;
        }
        memcpy(a->endpoint, ep, l);
        a->endpoint[l] = '\0';
    } else {
        w = snprintf(a->endpoint, sizeof a->endpoint, "https://%s.blob.core.windows.net", account);
        if (w < 0 || (size_t)w >= sizeof a->endpoint)
            return -EINVAL;
    }
    return 0;
}

void azure_account_clear(struct azure_account *a)
{
    if (a != NULL)
        OPENSSL_cleanse(a, sizeof *a);
}

const char *azure_redact_url(const char *url, char *out, size_t outlen)
{
    size_t n;

    if (out == NULL || outlen == 0)
        return "";
    if (url == NULL) {
        out[0] = '\0';
        return out;
    }
    n = strcspn(url, "?#");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, url, n);
    out[n] = '\0';
    return out;
}
