/* store_azure.c - the store interface (store.h) on Azure Blob Storage
 * (`azure://ACCOUNT/CONTAINER/PREFIX`): Azure, sovereign clouds and Azurite through
 * AZURE_STORAGE_BLOB_ENDPOINT. HTTP by libcurl (curl_dl.c), Shared Key signing and the account
 * settings by azure_sign.c, the listing by azxml.c; what objects mean is the caller's.
 *
 * Guarantees: a blob is written as blocks (Put Block, IDs of equal length, each with
 * Content-MD5, re-read from the caller's file to retry) made visible only by Put Block List, so
 * a failed or killed upload is never listed (uncommitted blocks are invisible and the service
 * drops them after a week: abort and abort_stale have nothing to send). Transient failures (5xx,
 * 429, 408, timeouts, resets) are retried per request with capped, jittered backoff; a broken
 * download resumes with x-ms-range + If-Match. Secrets come from the env only; URLs are logged
 * without their query (a SAS token lives there). One store is used by one thread at a time.
 *
 * Env: AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_ACCOUNT (optional; must
 * match the URL), AZURE_STORAGE_BLOB_ENDPOINT (default https://ACCOUNT.blob.core.windows.net),
 * AZURE_CA_BUNDLE. */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "azure_sign.h"
#include "base64.h"
#include "azxml.h"
#include "curl_dl.h"
#include "errbuf.h"
#include "log.h"
#include "store.h"

#define AZ_MAX_CONTAINER 63
#define AZ_MAX_BLOB (STORE_MAX_NAME * 2)    /* prefix + name */
#define AZ_MAX_PATH (AZ_MAX_BLOB * 3 + 600) /* endpoint path + container + encoded blob */
#define AZ_MAX_QUERY (AZURE_MAX_SAS + 4 * AZXML_MAX_NAME + 256)
#define AZ_MAX_BLOCKS 50000 /* the service's limit of blocks per blob */
#define AZ_MAX_HEADERS 12

struct az_store {
    struct store base;
    struct azure_account acct;
    struct curl_pool
        handles;       /* a connection per concurrent call (the agent's threads share a store) */
    char origin[512];  /* scheme://host[:port] of the endpoint */
    char ep_path[512]; /* the endpoint's path ("" or "/ACCOUNT" for Azurite) */
    char container[AZ_MAX_CONTAINER + 1];
    char prefix[STORE_MAX_NAME + 2]; /* "" or ending in '/' */
    char cabundle[1024];
    int attempts, base_ms, low_speed_s;
};

struct az_upload {
    struct store_upload base;
    struct az_store *s;
    char blob[AZ_MAX_BLOB + 1];
};

struct az_param {
    const char *name, *value; /* value raw: encoded when sent */
};

/* One HTTP exchange (with its retries). */
struct az_call {
    const char *method, *what;
    const char *blob; /* full blob name; NULL for the container */
    struct az_param params[5];
    size_t n_params;
    const char *content_type;
    bool block_blob; /* x-ms-blob-type: BlockBlob (Put Blob) */
    const char *mem;
    size_t mem_len;
    int fd;
    uint64_t off, len;
    bool has_body, send_md5;
    store_sink_fn sink;
    void *sink_arg;
    /* per attempt */
    uint64_t sent, delivered, resume_from;
    long status;
    int sink_rc;
    char etag[STORE_MAX_ETAG], first_etag[STORE_MAX_ETAG];
    char error_code[64];
    char *body;
    size_t body_len, body_cap;
    bool body_overflow;
};

static bool container_valid(const char *c, size_t n)
{
    if (n < 3 || n > AZ_MAX_CONTAINER || c[0] == '-' || c[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        bool ok = (c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') || c[i] == '-';
        if (!ok || (c[i] == '-' && i > 0 && c[i - 1] == '-'))
            return false;
    }
    return true;
}

static void az_close(struct store *st)
{
    struct az_store *s = (struct az_store *)st;

    curl_pool_destroy(&s->handles);
    azure_account_clear(&s->acct);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

static int az_open(const char *url, const struct store_options *o, struct store **out, char *err,
                   size_t err_len)
{
    struct az_store *s = calloc(1, sizeof(*s));
    const char *p = url + strlen("azure://"), *slash, *cslash, *ca;
    char account[AZURE_MAX_ACCOUNT];
    size_t n;
    int rc;

    if (!s)
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    slash = strchr(p, '/');
    if (!slash || (size_t)(slash - p) >= sizeof(account)) {
        rc = errbuf_fail(err, err_len, -EINVAL,
                         "azure URL: want azure://ACCOUNT/CONTAINER[/PREFIX]");
        goto out;
    }
    memcpy(account, p, (size_t)(slash - p));
    account[slash - p] = '\0';
    p = slash + 1;
    cslash = strchr(p, '/');
    n = cslash ? (size_t)(cslash - p) : strlen(p);
    if (!container_valid(p, n)) {
        rc = errbuf_fail(
            err, err_len, -EINVAL,
            "azure URL: container must be 3-63 lower-case letters, digits or single '-'");
        goto out;
    }
    memcpy(s->container, p, n);
    s->container[n] = '\0';
    p = cslash ? cslash + 1 : p + n;
    if (strchr(p, '?') || strchr(p, '#')) {
        rc = errbuf_fail(err, err_len, -EINVAL,
                         "azure URL: no query: the SAS token goes in "
                         "AZURE_STORAGE_SAS_TOKEN");
        goto out;
    }
    if (p[0] && !store_name_valid(p, true)) {
        rc = errbuf_fail(err, err_len, -EINVAL, "azure URL: invalid prefix");
        goto out;
    }
    n = strlen(p);
    if (n + 2 > sizeof(s->prefix)) {
        rc = errbuf_fail(err, err_len, -EINVAL, "azure URL: prefix too long");
        goto out;
    }
    snprintf(s->prefix, sizeof(s->prefix), "%s%s", p, n && p[n - 1] != '/' ? "/" : "");
    rc = azure_account_from_env(account, &s->acct, err, err_len);
    if (rc != 0)
        goto out;
    {
        const char *e = s->acct.endpoint, *host = strstr(e, "://") + 3, *path = strchr(host, '/');
        size_t ol = path ? (size_t)(path - e) : strlen(e);
        if (ol >= sizeof(s->origin) || (path && strlen(path) >= sizeof(s->ep_path))) {
            rc = errbuf_fail(err, err_len, -EINVAL, "AZURE_STORAGE_BLOB_ENDPOINT too long");
            goto out;
        }
        memcpy(s->origin, e, ol);
        s->origin[ol] = '\0';
        snprintf(s->ep_path, sizeof(s->ep_path), "%s", path ? path : "");
    }
    ca = getenv("AZURE_CA_BUNDLE");
    if (ca && strlen(ca) < sizeof(s->cabundle))
        snprintf(s->cabundle, sizeof(s->cabundle), "%s", ca);
    s->attempts = o->retry_attempts > 0 ? o->retry_attempts : STORE_RETRY_ATTEMPTS;
    s->base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : STORE_RETRY_BASE_MS;
    s->low_speed_s = o->low_speed_s > 0 ? o->low_speed_s : STORE_LOW_SPEED_SECONDS;
    const struct curl_dl *curl = curl_dl_get(err, err_len);
    if (!curl) {
        rc = -ENOENT;
        goto out;
    }
    curl_pool_init(&s->handles, curl);
    CURL *h = curl_pool_take(&s->handles); /* the first connection's handle, kept idle */
    if (!h) {
        rc = errbuf_fail(err, err_len, -ENOMEM, "libcurl: cannot create a handle");
        goto out;
    }
    curl_pool_give(&s->handles, h);
    *out = &s->base;
    return 0;
out:
    az_close(&s->base);
    return rc;
}

/* ---- one request --------------------------------------------------------------------------- */

static void header_value(const char *buf, size_t len, size_t skip, char *out, size_t cap)
{
    const char *v = buf + skip;
    size_t vlen = len - skip;

    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (vlen < cap) {
        memcpy(out, v, vlen);
        out[vlen] = '\0';
    }
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct az_call *c = arg;
    size_t len = size * n;

    if (len > 5 && memcmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', len);
        c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        c->etag[0] = '\0';
        c->error_code[0] = '\0';
    } else if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
        header_value(buf, len, 5, c->etag, sizeof(c->etag));
    } else if (len > 16 && strncasecmp(buf, "x-ms-error-code:", 16) == 0) {
        header_value(buf, len, 16, c->error_code, sizeof(c->error_code));
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
    struct az_call *c = arg;
    size_t len = size * n;

    if (c->sink && c->status / 100 == 2) {
        int rc;
        if (c->resume_from > 0 && c->status != 206) {
            c->sink_rc = -EBADMSG; /* the whole blob again: the range was ignored */
            return 0;
        }
        if (!c->first_etag[0] && c->etag[0])
            snprintf(c->first_etag, sizeof(c->first_etag), "%s", c->etag);
        rc = c->sink(c->sink_arg, buf, len);
        if (rc != 0) {
            c->sink_rc = rc < 0 ? rc : -EIO;
            return 0;
        }
        c->delivered += len;
        return len;
    }
    if (c->body_len + len > (c->status / 100 == 2 ? STORE_MAX_XML : STORE_MAX_ERROR_BODY)) {
        c->body_overflow = true;
        return 0;
    }
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        char *nb;
        while (cap < c->body_len + len + 1)
            cap *= 2;
        nb = realloc(c->body, cap);
        if (!nb)
            return 0;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, buf, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct az_call *c = arg;
    size_t want = size * n;
    uint64_t left = (c->mem ? c->mem_len : c->len) - c->sent;

    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (c->mem) {
        memcpy(buf, c->mem + c->sent, want);
    } else {
        ssize_t r;
        do
            r = pread(c->fd, buf, want, (off_t)(c->off + c->sent));
        while (r < 0 && errno == EINTR);
        if (r <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)r;
    }
    c->sent += want;
    return want;
}

/* base64 MD5 of the body (a file region is read once more for it) */
static int body_md5(const struct az_call *c, char *md5_b64)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char md5[16], *buf = NULL;
    uint64_t done = 0;
    int rc = 0;

    if (!m || !EVP_DigestInit_ex(m, EVP_md5(), NULL)) {
        rc = -ENOMEM;
        goto out;
    }
    if (c->mem) {
        if (!EVP_DigestUpdate(m, c->mem, c->mem_len))
            rc = -EIO;
    } else {
        buf = malloc(STORE_IO_CHUNK);
        if (!buf) {
            rc = -ENOMEM;
            goto out;
        }
        while (done < c->len) {
            size_t want = c->len - done < STORE_IO_CHUNK ? (size_t)(c->len - done) : STORE_IO_CHUNK;
            ssize_t r = pread(c->fd, buf, want, (off_t)(c->off + done));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = r < 0 ? -errno : -EIO;
                goto out;
            }
            if (!EVP_DigestUpdate(m, buf, (size_t)r)) {
                rc = -EIO;
                goto out;
            }
            done += (uint64_t)r;
        }
    }
    if (rc == 0 && !EVP_DigestFinal_ex(m, md5, NULL))
        rc = -EIO;
    if (rc == 0)
        md5_b64[base64_encode(md5, sizeof(md5), md5_b64, true)] = '\0';
out:
    free(buf);
    EVP_MD_CTX_free(m);
    return rc;
}

static bool transient(const struct az_call *c)
{
    return c->status >= 500 || c->status == 429 || c->status == 408;
}

static void backoff(const struct az_store *s, int attempt)
{
    uint64_t cap = (uint64_t)s->base_ms << (attempt < 16 ? attempt : 16);
    struct timespec ts;
    uint32_t ms;

    if (cap > STORE_RETRY_MAX_MS)
        cap = STORE_RETRY_MAX_MS;
    ms = (uint32_t)(cap / 2) + arc4random_uniform((uint32_t)(cap / 2 + 1));
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* percent-encodes s (RFC 3986 unreserved kept; '/' kept when keep_slash) */
static int uri_encode(const char *s, bool keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
                     (keep_slash && ch == '/');
        if (o + (plain ? 1 : 3) >= cap)
            return -ENAMETOOLONG;
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

/* One attempt. Returns 0 (an HTTP answer: c->status) or -EAGAIN (transient transport error),
 * -ECONNREFUSED, the sink's error, -EFBIG (oversized answer), -EIO (our file). */
static int attempt(struct az_store *s, CURL *ch, struct az_call *c, const char *path,
                   const char *query, const char *md5, char *cerr)
{
    const struct curl_dl *cu = s->handles.curl;
    char url[sizeof(s->origin) + AZ_MAX_PATH + AZ_MAX_QUERY + 2];
    char date[40], clen[24], range[64] = "", ifm[STORE_MAX_ETAG + 16] = "";
    char line[AZ_MAX_HEADERS][STORE_MAX_ETAG + 64], auth[512];
    struct azure_header h[AZ_MAX_HEADERS];
    struct curl_slist *list = NULL, *l;
    size_t nh = 0, i;
    CURLcode cc;
    int n, rc = 0;
    uint64_t body_len = c->mem ? c->mem_len : c->len;

    if (s->acct.sas[0])
        n = snprintf(url, sizeof(url), "%s%s?%s%s%s", s->origin, path, query, query[0] ? "&" : "",
                     s->acct.sas);
    else
        n = snprintf(url, sizeof(url), "%s%s%s%s", s->origin, path, query[0] ? "?" : "", query);
    if (n < 0 || (size_t)n >= sizeof(url))
        return -ENAMETOOLONG;
    if (azure_date(time(NULL), date, sizeof(date)) != 0)
        return -EINVAL;
    h[nh++] = (struct azure_header){"x-ms-date", date};
    h[nh++] = (struct azure_header){"x-ms-version", AZURE_API_VERSION};
    if (c->has_body) {
        snprintf(clen, sizeof(clen), "%llu", (unsigned long long)body_len);
        h[nh++] = (struct azure_header){"Content-Length", clen};
    }
    if (md5)
        h[nh++] = (struct azure_header){"Content-MD5", md5};
    if (c->content_type)
        h[nh++] = (struct azure_header){"Content-Type", c->content_type};
    if (c->block_blob)
        h[nh++] = (struct azure_header){"x-ms-blob-type", "BlockBlob"};
    if (c->sink && c->delivered > 0) {
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)c->delivered);
        h[nh++] = (struct azure_header){"x-ms-range", range};
        if (c->first_etag[0]) {
            snprintf(ifm, sizeof(ifm), "%s", c->first_etag);
            h[nh++] = (struct azure_header){"If-Match", ifm};
        }
    }
    if (s->acct.key_len) {
        char sts[AZURE_MAX_STRING_TO_SIGN];
        rc = azure_string_to_sign(c->method, s->acct.account, path, query, h, nh, sts, sizeof(sts));
        if (rc == 0)
            rc = azure_sign(s->acct.account, s->acct.key, s->acct.key_len, sts, auth, sizeof(auth));
        if (rc != 0)
            return rc;
    }
    for (i = 0; i < nh; i++) {
        if (strcmp(h[i].name, "Content-Length") == 0)
            continue; /* curl sends it from CURLOPT_INFILESIZE_LARGE */
        n = snprintf(line[i], sizeof(line[i]), "%s: %s", h[i].name, h[i].value);
        if (n < 0 || (size_t)n >= sizeof(line[i]) || !(l = cu->slist_append(list, line[i])))
            goto nomem;
        list = l;
    }
    if (s->acct.key_len) {
        char a[600];
        snprintf(a, sizeof(a), "Authorization: %s", auth);
        l = cu->slist_append(list, a);
        OPENSSL_cleanse(a, sizeof(a));
        if (!l)
            goto nomem;
        list = l;
    }
    if (!(l = cu->slist_append(list, "Expect:")) || !(list = l) ||
        (!c->content_type && (!(l = cu->slist_append(list, "Content-Type:")) || !(list = l))) ||
        !(l = cu->slist_append(list, "Accept:")))
        goto nomem;
    list = l;
    c->status = 0;
    c->sent = 0;
    c->resume_from = c->delivered;
    c->sink_rc = 0;
    c->body_len = 0;
    c->body_overflow = false;
    c->etag[0] = '\0';
    c->error_code[0] = '\0';
    cerr[0] = '\0';
    curl_request_setup(cu, ch,
                       &(struct curl_request){.method = c->method,
                                              .url = url,
                                              .headers = list,
                                              .on_header = on_header,
                                              .on_body = on_body,
                                              .on_read = c->has_body ? on_read : NULL,
                                              .arg = c,
                                              .body_len = body_len,
                                              .errbuf = cerr,
                                              .low_speed_s = s->low_speed_s,
                                              .cabundle = s->cabundle});
    cc = cu->easy_perform(ch);
    cu->slist_free_all(list);
    OPENSSL_cleanse(auth, sizeof(auth));
    OPENSSL_cleanse(url, sizeof(url));
    /* curl's messages may quote the URL: keep its query (the SAS) out of them */
    {
        char *q = strchr(cerr, '?');
        if (q)
            *q = '\0';
    }
    if (c->sink_rc)
        return c->sink_rc;
    if (c->body_overflow)
        return -EFBIG;
    if (cc == CURLE_OK)
        return 0;
    if (!cerr[0])
        snprintf(cerr, CURL_ERROR_SIZE, "%s", cu->easy_strerror(cc));
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
        return -ECONNREFUSED;
    if (cc == CURLE_READ_ERROR || cc == CURLE_ABORTED_BY_CALLBACK)
        return -EIO;
    return -EAGAIN;
nomem:
    cu->slist_free_all(list);
    OPENSSL_cleanse(auth, sizeof(auth));
    return -ENOMEM;
}

static int answer_error(const struct az_store *s, const struct az_call *c, const char *where,
                        char *err, size_t err_len)
{
    const char *code = c->error_code;
    long st = c->status;

    if (strcmp(code, "AuthenticationFailed") == 0)
        return errbuf_fail(
            err, err_len, -EACCES, "%s %s: authentication failed (AuthenticationFailed): check %s",
            c->what, where, s->acct.key_len ? "AZURE_STORAGE_KEY" : "AZURE_STORAGE_SAS_TOKEN");
    if (st == 403)
        return errbuf_fail(err, err_len, -EACCES, "%s %s: access denied (HTTP 403%s%s): check %s",
                           c->what, where, code[0] ? " " : "", code,
                           s->acct.key_len
                               ? "AZURE_STORAGE_KEY"
                               : "AZURE_STORAGE_SAS_TOKEN (signature, permissions, expiry)");
    if (strcmp(code, "ContainerNotFound") == 0)
        return errbuf_fail(err, err_len, -ENOENT,
                           "%s %s: container %s does not exist (ContainerNotFound)", c->what, where,
                           s->container);
    if (st == 404)
        return errbuf_fail(err, err_len, -ENOENT, "%s %s: not found (HTTP 404%s%s)", c->what, where,
                           code[0] ? " " : "", code);
    if (st == 412 || strcmp(code, "Md5Mismatch") == 0 || strcmp(code, "InvalidMd5") == 0 ||
        strcmp(code, "InvalidBlockList") == 0)
        return errbuf_fail(err, err_len, -EBADMSG, "%s %s: refused (HTTP %ld %s)", c->what, where,
                           st, code);
    if (transient(c))
        return errbuf_fail(err, err_len, -EIO, "%s %s: HTTP %ld%s%s after %d attempts", c->what,
                           where, st, code[0] ? " " : "", code, s->attempts);
    return errbuf_fail(err, err_len, -EIO, "%s %s: HTTP %ld%s%s", c->what, where, st,
                       code[0] ? " " : "", code);
}

static int build_query(const struct az_call *c, char *q, size_t cap)
{
    size_t o = 0;

    q[0] = '\0';
    for (size_t i = 0; i < c->n_params; i++) {
        char enc[4 * AZXML_MAX_NAME * 3 + 1];
        int n;
        if (uri_encode(c->params[i].value, false, enc, sizeof(enc)) != 0)
            return -ENAMETOOLONG;
        n = snprintf(q + o, cap - o, "%s%s=%s", i ? "&" : "", c->params[i].name, enc);
        if (n < 0 || (size_t)n >= cap - o)
            return -ENAMETOOLONG;
        o += (size_t)n;
    }
    return 0;
}

static int az_do_with(struct az_store *s, CURL *h, struct az_call *c, char *err, size_t err_len);

/* Runs c with retries on a handle of the pool. Returns 0 on a 2xx answer, else a negative errno
 * with err filled. */
static int az_do(struct az_store *s, struct az_call *c, char *err, size_t err_len)
{
    CURL *h = curl_pool_take(&s->handles);
    if (!h)
        return errbuf_fail(err, err_len, -ENOMEM, "libcurl: cannot create a handle");
    int rc = az_do_with(s, h, c, err, err_len);
    curl_pool_give(&s->handles, h);
    return rc;
}

static int az_do_with(struct az_store *s, CURL *h, struct az_call *c, char *err, size_t err_len)
{
    char path[AZ_MAX_PATH], enc[AZ_MAX_BLOB * 3 + 1], query[AZ_MAX_QUERY], where[STORE_MAX_URL];
    char md5[32] = "", cerr[CURL_ERROR_SIZE];
    int rc = 0, i, n;

    n = snprintf(where, sizeof(where), "azure://%s/%s/%s", s->acct.account, s->container,
                 c->blob ? c->blob : "");
    if (n < 0 || (size_t)n >= sizeof(where))
        where[sizeof(where) - 1] = '\0';
    if (uri_encode(c->blob ? c->blob : "", true, enc, sizeof(enc)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "%s %s: name too long", c->what, where);
    n = snprintf(path, sizeof(path), "%s/%s%s%s", s->ep_path, s->container, c->blob ? "/" : "",
                 enc);
    if (n < 0 || (size_t)n >= sizeof(path))
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "%s %s: name too long", c->what, where);
    if (build_query(c, query, sizeof(query)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "%s %s: query too long", c->what, where);
    if (c->has_body && c->send_md5) {
        rc = body_md5(c, md5);
        if (rc != 0)
            return errbuf_fail(err, err_len, rc, "%s %s: reading the body: %s", c->what, where,
                               strerror(-rc));
    }
    for (i = 0; i < s->attempts; i++) {
        bool again;

        if (i > 0)
            backoff(s, i - 1);
        cerr[0] = '\0'; /* attempt() fills it only on a transport error */
        rc = attempt(s, h, c, path, query, c->send_md5 ? md5 : NULL, cerr);
        if (rc == 0 && c->status / 100 == 2) {
            return 0;
        } else if (rc == 0) {
            if (c->sink && c->delivered > 0 && c->status == 412)
                return errbuf_fail(err, err_len, -EBADMSG, "%s %s: the blob changed while reading",
                                   c->what, where);
            again = transient(c);
            if (!again)
                return answer_error(s, c, where, err, err_len);
            snprintf(cerr, sizeof(cerr), "HTTP %ld%s%s", c->status, c->error_code[0] ? " " : "",
                     c->error_code);
        } else if (rc == -EAGAIN || rc == -ECONNREFUSED) {
            again = true;
        } else {
            if (rc == -EFBIG)
                return errbuf_fail(err, err_len, -EBADMSG, "%s %s: answer larger than allowed",
                                   c->what, where);
            if (c->sink_rc == -EBADMSG && c->resume_from > 0)
                return errbuf_fail(err, err_len, -EBADMSG,
                                   "%s %s: the store ignored the range on a "
                                   "retry",
                                   c->what, where);
            if (c->sink_rc)
                return errbuf_fail(err, err_len, rc, "%s %s: stopped by the reader: %s", c->what,
                                   where, strerror(-rc));
            return errbuf_fail(err, err_len, rc, "%s %s: %s", c->what, where,
                               cerr[0] ? cerr : strerror(-rc));
        }
        (void)again;
        if (i + 1 < s->attempts)
            log_msg(LOG_WARN, "store: %s %s: %s; retry %d of %d", c->what, where, cerr, i + 1,
                    s->attempts - 1);
        if (rc == -ECONNREFUSED && i + 1 == s->attempts)
            return errbuf_fail(err, err_len, -ECONNREFUSED, "%s %s: cannot reach %s: %s", c->what,
                               where, s->origin, cerr);
    }
    if (c->status && rc == 0)
        return answer_error(s, c, where, err, err_len);
    return errbuf_fail(err, err_len, -EIO, "%s %s: %s after %d attempts", c->what, where, cerr,
                       s->attempts);
}

static int full_blob(const struct az_store *s, const char *name, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", s->prefix, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- uploads ------------------------------------------------------------------------------- */

static int az_upload_begin(struct store *st, const char *name, struct store_upload **out, char *err,
                           size_t err_len)
{
    struct az_store *s = (struct az_store *)st;
    struct az_upload *u = calloc(1, sizeof(*u));

    if (!u)
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    u->s = s;
    if (full_blob(s, name, u->blob, sizeof(u->blob)) != 0) {
        free(u);
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    }
    *out = &u->base;
    return 0;
}

/* Block k-1 for part k: the block list at commit names them in part order. */
static int az_upload_part(struct store_upload *up, const struct store_part *p, char *err,
                          size_t err_len)
{
    struct az_upload *u = (struct az_upload *)up;
    char id[29], what[32];
    struct az_call c = {.method = "PUT",
                        .what = what,
                        .blob = u->blob,
                        .params = {{"comp", "block"}, {"blockid", id}},
                        .n_params = 2,
                        .has_body = true,
                        .fd = p->fd,
                        .off = p->off,
                        .len = p->len,
                        .send_md5 = true};
    int rc;

    if (p->number > AZ_MAX_BLOCKS)
        return errbuf_fail(err, err_len, -EFBIG, "more than %d blocks", AZ_MAX_BLOCKS);
    azure_block_id(p->number - 1, id);
    snprintf(what, sizeof(what), "put block %u", p->number);
    rc = az_do(u->s, &c, err, err_len);
    free(c.body);
    return rc;
}

static void az_upload_abort(struct store_upload *up)
{
    /* uncommitted blocks are invisible and dropped by the service after 7 days; committing
     * nothing is the whole abort */
    free(up);
}

static int az_upload_commit(struct store_upload *up, char *err, size_t err_len)
{
    struct az_upload *u = (struct az_upload *)up;
    struct az_call c;
    char *xml = NULL, id[29];
    uint32_t blocks = atomic_load(&u->base.highest);
    size_t cap = 128 + (size_t)blocks * 48, o;
    int rc;

    if (blocks == 0) { /* an empty object: one Put Blob */
        c = (struct az_call){.method = "PUT",
                             .what = "put",
                             .blob = u->blob,
                             .has_body = true,
                             .mem = "",
                             .mem_len = 0,
                             .fd = -1,
                             .send_md5 = true,
                             .block_blob = true};
        rc = az_do(u->s, &c, err, err_len);
        free(c.body);
        free(u);
        return rc;
    }
    xml = malloc(cap);
    if (!xml) {
        free(u);
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    }
    o = (size_t)snprintf(xml, cap, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (uint32_t i = 0; i < blocks; i++) {
        azure_block_id(i, id);
        o += (size_t)snprintf(xml + o, cap - o, "<Latest>%s</Latest>", id);
    }
    o += (size_t)snprintf(xml + o, cap - o, "</BlockList>");
    c = (struct az_call){.method = "PUT",
                         .what = "put block list",
                         .blob = u->blob,
                         .params = {{"comp", "blocklist"}},
                         .n_params = 1,
                         .has_body = true,
                         .mem = xml,
                         .mem_len = o,
                         .fd = -1,
                         .send_md5 = true,
                         .content_type = "application/xml"};
    rc = az_do(u->s, &c, err, err_len);
    free(c.body);
    free(xml);
    free(u);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------- */

static int az_get(struct store *st, const char *name, store_sink_fn sink, void *arg, char *err,
                  size_t err_len)
{
    struct az_store *s = (struct az_store *)st;
    char blob[AZ_MAX_BLOB + 1];
    struct az_call c = {
        .method = "GET", .what = "get", .blob = blob, .sink = sink, .sink_arg = arg, .fd = -1};
    int rc;

    if (full_blob(s, name, blob, sizeof(blob)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    rc = az_do(s, &c, err, err_len);
    free(c.body);
    return rc;
}

struct list_ctx {
    struct az_store *s;
    store_list_fn fn;
    void *arg;
    size_t count;
};

static int on_listed(void *arg, const struct azxml_blob *b)
{
    struct list_ctx *l = arg;
    struct store_entry e = {.size = b->size, .mtime = b->mtime};
    size_t plen = strlen(l->s->prefix);

    if (++l->count > STORE_MAX_LISTED)
        return -E2BIG;
    if (strncmp(b->name, l->s->prefix, plen) != 0 || strlen(b->name + plen) > STORE_MAX_NAME ||
        !store_name_valid(b->name + plen, false))
        return 0;
    memcpy(e.name, b->name + plen, strlen(b->name + plen) + 1);
    return l->fn(l->arg, &e);
}

static int az_list(struct store *st, const char *prefix, store_list_fn fn, void *arg, char *err,
                   size_t err_len)
{
    struct az_store *s = (struct az_store *)st;
    struct list_ctx l = {s, fn, arg, 0};
    char full[AZ_MAX_BLOB + 1], marker[AZXML_MAX_NAME * 4 + 1] = "";
    bool more = true;
    int rc = 0;

    if (full_blob(s, prefix, full, sizeof(full)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "prefix too long");
    while (more && rc == 0) {
        struct az_call c = {
            .method = "GET",
            .what = "list",
            .fd = -1,
            .params = {{"restype", "container"}, {"comp", "list"}, {"prefix", full}},
            .n_params = 3};
        if (marker[0])
            c.params[c.n_params++] = (struct az_param){"marker", marker};
        rc = az_do(s, &c, err, err_len);
        if (rc == 0) {
            char next[sizeof(marker)];
            rc = azxml_list_blobs(c.body ? c.body : "", c.body_len, on_listed, &l, next,
                                  sizeof(next));
            if (rc == -EINVAL || rc == -E2BIG)
                rc = errbuf_fail(err, err_len, rc == -EINVAL ? -EBADMSG : rc,
                                 "list azure://%s/%s/%s: %s", s->acct.account, s->container, full,
                                 rc == -EINVAL ? "unreadable answer" : "too many objects");
            if (rc == 0 && next[0] && strcmp(next, marker) == 0)
                rc = errbuf_fail(err, err_len, -EBADMSG,
                                 "list azure://%s/%s/%s: marker did not move", s->acct.account,
                                 s->container, full);
            if (rc == 0) {
                memcpy(marker, next, sizeof(marker));
                more = marker[0] != '\0';
            }
        }
        free(c.body);
    }
    return rc;
}

static int az_remove(struct store *st, const char *name, char *err, size_t err_len)
{
    struct az_store *s = (struct az_store *)st;
    char blob[AZ_MAX_BLOB + 1];
    struct az_call c = {.method = "DELETE", .what = "remove", .blob = blob, .fd = -1};
    int rc;

    if (full_blob(s, name, blob, sizeof(blob)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    rc = az_do(s, &c, err, err_len);
    free(c.body);
    return rc;
}

static int az_abort_stale(struct store *st, const char *prefix, time_t before, unsigned *aborted,
                          char *err, size_t err_len)
{
    (void)st, (void)prefix, (void)before, (void)err, (void)err_len;
    *aborted = 0; /* uncommitted blocks expire on their own (7 days) and are never listed */
    return 0;
}

const struct store_ops store_azure_ops = {
    .scheme = "azure",
    .open = az_open,
    .close = az_close,
    .upload_begin = az_upload_begin,
    .upload_part = az_upload_part,
    .upload_commit = az_upload_commit,
    .upload_abort = az_upload_abort,
    .get = az_get,
    .list = az_list,
    .remove = az_remove,
    .abort_stale = az_abort_stale,
};
