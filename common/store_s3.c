/* store_s3.c - the store interface (store.h) on any S3-compatible server (`s3://BUCKET/PREFIX`):
 * AWS S3, Ceph RGW, MinIO, GCS (XML API, HMAC keys), R2. HTTP by libcurl (curl_dl.c), signing
 * by sigv4.c, XML answers by s3xml.c; what objects mean is the caller's.
 *
 * Guarantees: an object is written by one PUT (small) or as a multipart upload that becomes
 * visible only on CompleteMultipartUpload, so a failed or killed upload is never listed; a part
 * that keeps failing aborts the upload (AbortMultipartUpload) and abort_stale removes the
 * leftovers of a crashed writer. Parts are re-read from the caller's file, never held in
 * memory; each carries Content-MD5 and, without TLS, its sha256 in the signature. Transient
 * failures (5xx, 429, timeouts, resets) are retried per request with capped, jittered backoff;
 * a broken download resumes with Range + If-Match. Secrets come from the env or the AWS
 * credentials file only and are never logged; URLs are logged without their query. Threads may
 * share a store: a call that finds the store's connection busy makes its own for the call.
 *
 * Credentials, region and endpoint as the AWS CLI finds them (aws_creds.c): AWS_ACCESS_KEY_ID +
 * AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the profile (AWS_PROFILE) of
 * AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, re-read before each request when a file changed
 * (a mounted Secret is swapped in place), refused with a clear error once its expiry passed;
 * AWS_REGION / AWS_DEFAULT_REGION / the profile's region (default us-east-1);
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / the profile's endpoint_url (then path-style
 * addressing; else virtual-host style on amazonaws.com); AWS_CA_BUNDLE (a private CA). Region
 * and endpoint are read once, at open. */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aws_creds.h"
#include "base64.h"
#include "curl_dl.h"
#include "errbuf.h"
#include "hex.h"
#include "log.h"
#include "s3xml.h"
#include "sigv4.h"
#include "store.h"

#define S3_MAX_HOST 256
#define S3_MAX_BUCKET 63
#define S3_MAX_KEY (STORE_MAX_NAME * 2) /* prefix + name */
#define S3_MAX_PATH (S3_MAX_KEY * 3 + S3_MAX_BUCKET + 4)
#define S3_MAX_QUERY 4096
#define S3_MAX_HEADER 5120 /* one request header line (a session token is long) */
#define S3_ERR_QUOTE 200   /* bytes of the server's <Message> quoted */

struct s3_store {
    struct store base;
    struct curl_pool handles;
    pthread_mutex_t creds_mu; /* guards cache */
    struct aws_creds_cache cache;
    bool tls, path_style;
    char endpoint[S3_MAX_HOST + 16]; /* scheme://host[:port] */
    char host[S3_MAX_HOST];          /* Host header */
    char bucket[S3_MAX_BUCKET + 1];
    char prefix[STORE_MAX_NAME + 2]; /* "" or ending in '/' */
    char region[AWS_CREDS_MAX_KEY];
    char cabundle[1024];
    int attempts, base_ms, low_speed_s;
};

struct s3_upload {
    struct store_upload base;
    struct s3_store *s;
    char key[S3_MAX_KEY + 1];
    bool held; /* part 1 kept back (maybe a single PUT): set by its call, cleared by part 2's */
    struct store_part held_part;
    /* The multipart upload is created by the first call after part 1; calls beside it wait. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool creating;                           /* under mu */
    int create_rc;                           /* under mu: the creation's failure (sticky) */
    char upload_id[STORE_MAX_UPLOAD_ID + 1]; /* under mu until set, then read-only; "" before */
    char (*etags)[STORE_MAX_ETAG];           /* [number - 1]: each part's slot is its call's */
};

/* One HTTP exchange (with its retries). */
struct s3_call {
    const char *method, *what; /* what: for messages ("upload part 3") */
    const char *key;           /* full key, NULL for the bucket */
    struct sigv4_param params[6];
    size_t n_params;
    const char *mem; /* body from memory ... */
    size_t mem_len;
    int fd; /* ... or from a file region */
    uint64_t off, len;
    bool has_body, send_md5;
    store_sink_fn sink; /* GET: 2xx bodies go here, others to body */
    void *sink_arg;
    /* per attempt */
    uint64_t sent, delivered, total;
    bool have_total;
    long status;
    int sink_rc;
    char etag[STORE_MAX_ETAG], first_etag[STORE_MAX_ETAG];
    char *body;
    size_t body_len, body_cap;
    bool body_overflow;
};

static int copy_env(const char *name, char *out, size_t len)
{
    const char *v = getenv(name);
    if (!v || !v[0])
        return -ENOENT;
    if (strlen(v) >= len)
        return -ENAMETOOLONG;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* "http://host:port" (optionally a trailing '/') -> endpoint and Host. */
static int parse_endpoint(struct s3_store *s, const char *url, char *err, size_t err_len)
{
    const char *host;
    size_t n;

    if (strncmp(url, "https://", 8) == 0) {
        s->tls = true;
        host = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        host = url + 7;
    } else {
        return errbuf_fail(err, err_len, -EINVAL, "S3 endpoint must be http(s)://HOST[:PORT]");
    }
    n = strcspn(host, "/?#");
    if (n == 0 || n >= sizeof(s->host) || (host[n] && strcmp(host + n, "/") != 0) ||
        memchr(host, '@', n))
        return errbuf_fail(err, err_len, -EINVAL, "S3 endpoint must be http(s)://HOST[:PORT]");
    memcpy(s->host, host, n);
    s->host[n] = '\0';
    snprintf(s->endpoint, sizeof(s->endpoint), "%s://%s", s->tls ? "https" : "http", s->host);
    return 0;
}

static bool bucket_valid(const char *b, size_t n)
{
    if (n < 3 || n > S3_MAX_BUCKET)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' ||
              b[i] == '.' || b[i] == '_'))
            return false;
    return true;
}

static void s3_close(struct store *st)
{
    struct s3_store *s = (struct s3_store *)st;
    if (!s)
        return;
    curl_pool_destroy(&s->handles);
    pthread_mutex_destroy(&s->creds_mu);
    aws_creds_cache_clear(&s->cache);
    free(s);
}

static int s3_open(const char *url, const struct store_options *o, struct store **out, char *err,
                   size_t err_len)
{
    const char *b = url + strlen("s3://"), *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    struct s3_store *s;
    struct aws_creds *cr = NULL;
    int rc = 0;

    if (!bucket_valid(b, blen))
        return errbuf_fail(err, err_len, -EINVAL,
                           "S3 URL must be s3://BUCKET[/PREFIX] (bucket: 3-63 of a-z0-9.-_)");
    if (strchr(b, '?') || strchr(b, '#'))
        return errbuf_fail(err, err_len, -EINVAL, "S3 URL must not hold a query or fragment");
    s = calloc(1, sizeof(*s));
    cr = calloc(1, sizeof(*cr));
    if (!s || !cr) {
        free(s);
        free(cr);
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->creds_mu, NULL);
    memcpy(s->bucket, b, blen);
    if (slash && slash[1]) {
        size_t plen = strlen(slash + 1);
        if (plen > STORE_MAX_NAME || !store_name_valid(slash + 1, true)) {
            rc = errbuf_fail(err, err_len, -EINVAL, "invalid prefix in the S3 URL");
            goto out;
        }
        snprintf(s->prefix, sizeof(s->prefix), "%s%s", slash + 1, slash[plen] == '/' ? "" : "/");
    }
    {
        char why[512] = "";
        /* expiry is checked before each request (creds_now), not here */
        rc = aws_creds_resolve("s3", cr, why, sizeof(why));
        if (rc != 0) {
            rc = errbuf_fail(err, err_len, rc == -ENOMEM ? -ENOMEM : -EINVAL, "S3 store: %s", why);
            goto out;
        }
    }
    snprintf(s->region, sizeof(s->region), "%s", cr->region[0] ? cr->region : "us-east-1");
    if (copy_env("AWS_CA_BUNDLE", s->cabundle, sizeof(s->cabundle)) == -ENAMETOOLONG) {
        rc = errbuf_fail(err, err_len, -EINVAL, "AWS_CA_BUNDLE longer than %zu bytes",
                         sizeof(s->cabundle) - 1);
        goto out;
    }
    if (s->cabundle[0] && access(s->cabundle, R_OK) != 0) {
        rc = errbuf_fail(err, err_len, -EINVAL, "AWS_CA_BUNDLE %s: %s", s->cabundle,
                         strerror(errno));
        goto out;
    }
    if (cr->endpoint_url[0]) {
        s->path_style = true;
        rc = parse_endpoint(s, cr->endpoint_url, err, err_len);
        if (rc != 0)
            goto out;
    } else {
        int n = snprintf(s->host, sizeof(s->host), "%s.s3.%s.amazonaws.com", s->bucket, s->region);
        if (n < 0 || (size_t)n >= sizeof(s->host)) {
            rc = errbuf_fail(err, err_len, -EINVAL, "bucket and region too long for a host name");
            goto out;
        }
        snprintf(s->endpoint, sizeof(s->endpoint), "https://%s", s->host);
        s->tls = true;
    }
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
    aws_creds_clear(cr);
    free(cr);
    *out = &s->base;
    return 0;
out:
    aws_creds_clear(cr);
    free(cr);
    s3_close(&s->base);
    return rc;
}

/* The keys to sign the next request with: re-read when a credentials/config file changed or
 * the cached ones expire. 0, or -EACCES with a line naming the source (never a secret). */
static int creds_now(struct s3_store *s, struct aws_creds *out, char *err, size_t err_len)
{
    char why[512] = "";
    char before[AWS_CREDS_MAX_KEY];
    bool had;
    int rc;

    pthread_mutex_lock(&s->creds_mu);
    had = s->cache.loaded;
    snprintf(before, sizeof(before), "%s", s->cache.creds.access_key_id);
    rc = aws_creds_get(&s->cache, "s3", (int64_t)time(NULL), out, why, sizeof(why));
    if (rc == 0 && had && strcmp(before, out->access_key_id) != 0)
        log_msg(LOG_INFO, "store: s3://%s: new AWS credentials from the %s (profile \"%s\")",
                s->bucket, out->source, out->profile);
    pthread_mutex_unlock(&s->creds_mu);
    if (rc == -ENOMEM)
        return errbuf_fail(err, err_len, rc, "out of memory");
    if (rc != 0)
        return errbuf_fail(err, err_len, -EACCES, "S3 store s3://%s: %s", s->bucket, why);
    return 0;
}

/* ---- one request --------------------------------------------------------------------------- */

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct s3_call *c = arg;
    size_t len = size * n, vlen;
    const char *v;

    if (len > 5 && memcmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', len);
        c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        c->etag[0] = '\0';
        return len;
    }
    if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
        v = buf + 5;
        vlen = len - 5;
        while (vlen && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        if (vlen < sizeof(c->etag)) {
            memcpy(c->etag, v, vlen);
            c->etag[vlen] = '\0';
        }
    } else if (len > 15 && strncasecmp(buf, "content-length:", 15) == 0 && c->status / 100 == 2 &&
               !c->have_total) {
        char num[32];
        size_t l = len - 15 < sizeof(num) - 1 ? len - 15 : sizeof(num) - 1;
        memcpy(num, buf + 15, l);
        num[l] = '\0';
        c->total = c->delivered + strtoull(num, NULL, 10); /* a ranged answer: the rest */
        c->have_total = true;
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
    struct s3_call *c = arg;
    size_t len = size * n;

    if (c->sink && c->status / 100 == 2) {
        int rc = c->sink(c->sink_arg, buf, len);
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
    struct s3_call *c = arg;
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

/* Hashes of the body: base64 MD5 and hex sha256 (sha256 only when wanted). */
static int body_digests(struct s3_call *c, char *md5_b64, char *sha_hex, bool want_sha)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new(), *sh = want_sha ? EVP_MD_CTX_new() : NULL;
    unsigned char md5[16], sha[32], *buf = NULL;
    uint64_t done = 0, total = c->mem ? c->mem_len : c->len;
    int rc = 0;

    if (!m || (want_sha && !sh) || !EVP_DigestInit_ex(m, EVP_md5(), NULL) ||
        (sh && !EVP_DigestInit_ex(sh, EVP_sha256(), NULL))) {
        rc = -ENOMEM;
        goto out;
    }
    if (c->mem) {
        if (!EVP_DigestUpdate(m, c->mem, c->mem_len) ||
            (sh && !EVP_DigestUpdate(sh, c->mem, c->mem_len)))
            rc = -EIO;
    } else {
        buf = malloc(STORE_IO_CHUNK);
        if (!buf) {
            rc = -ENOMEM;
            goto out;
        }
        while (done < total) {
            size_t want = total - done < STORE_IO_CHUNK ? (size_t)(total - done) : STORE_IO_CHUNK;
            ssize_t r = pread(c->fd, buf, want, (off_t)(c->off + done));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = r < 0 ? -errno : -EIO;
                goto out;
            }
            if (!EVP_DigestUpdate(m, buf, (size_t)r) ||
                (sh && !EVP_DigestUpdate(sh, buf, (size_t)r))) {
                rc = -EIO;
                goto out;
            }
            done += (uint64_t)r;
        }
    }
    if (rc == 0 &&
        (!EVP_DigestFinal_ex(m, md5, NULL) || (sh && !EVP_DigestFinal_ex(sh, sha, NULL))))
        rc = -EIO;
    if (rc == 0) {
        md5_b64[base64_encode(md5, sizeof(md5), md5_b64, true)] = '\0';
        if (sh)
            hex_encode(sha, sizeof(sha), sha_hex);
    }
out:
    free(buf);
    EVP_MD_CTX_free(m);
    EVP_MD_CTX_free(sh);
    return rc;
}

static bool transient_status(long st, const struct s3_call *c)
{
    char code[64], msg[8];
    if (st >= 500 || st == 429 || st == 408)
        return true;
    return st == 400 && c->body &&
           s3xml_error(c->body, c->body_len, code, sizeof(code), msg, sizeof(msg)) == 0 &&
           strcmp(code, "RequestTimeout") == 0;
}

static void backoff(const struct s3_store *s, int attempt)
{
    uint64_t cap = (uint64_t)s->base_ms << (attempt < 16 ? attempt : 16);
    struct timespec ts;
    uint32_t ms;

    if (cap > STORE_RETRY_MAX_MS)
        cap = STORE_RETRY_MAX_MS;
    ms = cap / 2 + arc4random_uniform((uint32_t)(cap / 2 + 1)); /* jitter over the upper half */
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The request's path (encoded) and full URL (without query: for messages). */
static int build_path(const struct s3_store *s, const char *key, char *path, size_t len)
{
    char raw[S3_MAX_KEY + S3_MAX_BUCKET + 4];
    int n;

    if (s->path_style)
        n = snprintf(raw, sizeof(raw), "/%s%s%s", s->bucket, key ? "/" : "", key ? key : "");
    else
        n = snprintf(raw, sizeof(raw), "/%s", key ? key : "");
    if (n < 0 || (size_t)n >= sizeof(raw))
        return -ENAMETOOLONG;
    return sigv4_uri_encode(raw, (size_t)n, true, path, len) < 0 ? -ENAMETOOLONG : 0;
}

/* One attempt. Returns 0 (an HTTP answer: c->status) or a CURLcode mapped: -EAGAIN transient
 * transport error, -ECONNREFUSED cannot connect, -EPROTO the store's certificate is not
 * trusted, the sink's error, -EFBIG an oversized answer. */
static int attempt(struct s3_store *s, CURL *h, const struct aws_creds *cr, struct s3_call *c,
                   const char *path, const char *query, const char *md5, const char *payload_hash,
                   char *cerr)
{
    const struct curl_dl *cu = s->handles.curl;
    char url[STORE_MAX_URL + S3_MAX_QUERY], date[SIGV4_DATE_LEN + 1], auth[1024];
    char hdr[SIGV4_MAX_HEADERS][S3_MAX_HEADER];
    struct sigv4_header sh[SIGV4_MAX_HEADERS];
    struct sigv4_key k = {cr->access_key_id, cr->secret_access_key, cr->session_token, s->region,
                          "s3"};
    struct sigv4_request r = {0};
    struct curl_slist *list = NULL, *l;
    char range[64] = "", ifm[STORE_MAX_ETAG + 16] = "";
    size_t nh = 0, i;
    CURLcode cc;
    int n, rc = 0;

    n = snprintf(url, sizeof(url), "%s%s%s%s", s->endpoint, path, query[0] ? "?" : "", query);
    if (n < 0 || (size_t)n >= sizeof(url))
        return -ENAMETOOLONG;
    sigv4_amz_date(time(NULL), date);
    sh[nh++] = (struct sigv4_header){"host", s->host};
    sh[nh++] = (struct sigv4_header){"x-amz-content-sha256", payload_hash};
    sh[nh++] = (struct sigv4_header){"x-amz-date", date};
    if (cr->session_token[0])
        sh[nh++] = (struct sigv4_header){"x-amz-security-token", cr->session_token};
    if (md5)
        sh[nh++] = (struct sigv4_header){"content-md5", md5};
    if (c->sink && c->delivered > 0) {
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)c->delivered);
        sh[nh++] = (struct sigv4_header){"range", range};
        if (c->first_etag[0]) {
            snprintf(ifm, sizeof(ifm), "%s", c->first_etag);
            sh[nh++] = (struct sigv4_header){"if-match", ifm};
        }
    }
    r = (struct sigv4_request){c->method, path, query, sh, nh, payload_hash, date};
    rc = sigv4_sign(&k, &r, auth, sizeof(auth), NULL, 0);
    if (rc != 0)
        return rc;
    for (i = 0; i < nh; i++) {
        n = snprintf(hdr[i], sizeof(hdr[i]), "%s: %s", sh[i].name, sh[i].value);
        if (n < 0 || (size_t)n >= sizeof(hdr[i]))
            return -ENAMETOOLONG;
    }
    for (i = 0; i < nh; i++) {
        if (!(l = cu->slist_append(list, hdr[i])))
            goto nomem;
        list = l;
    }
    {
        char a[1100];
        snprintf(a, sizeof(a), "Authorization: %s", auth);
        if (!(l = cu->slist_append(list, a)))
            goto nomem;
        list = l;
        OPENSSL_cleanse(a, sizeof(a));
    }
    if (!(l = cu->slist_append(list, "Expect:")) || !(list = l) ||
        !(l = cu->slist_append(list, "Content-Type:")) || !(list = l) ||
        !(l = cu->slist_append(list, "Accept:")))
        goto nomem;
    list = l;
    c->status = 0;
    c->sent = 0;
    c->sink_rc = 0;
    c->body_len = 0;
    c->body_overflow = false;
    c->etag[0] = '\0';
    c->have_total = false;
    cerr[0] = '\0';
    curl_request_setup(cu, h,
                       &(struct curl_request){.method = c->method,
                                              .url = url,
                                              .headers = list,
                                              .on_header = on_header,
                                              .on_body = on_body,
                                              .on_read = c->has_body ? on_read : NULL,
                                              .arg = c,
                                              .body_len = c->mem ? c->mem_len : c->len,
                                              .errbuf = cerr,
                                              .low_speed_s = s->low_speed_s,
                                              .cabundle = s->cabundle});
    cc = cu->easy_perform(h);
    cu->slist_free_all(list);
    OPENSSL_cleanse(auth, sizeof(auth));
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
        return -EIO; /* our file: not the store's fault, no retry */
    if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
        return -EPROTO; /* an untrusted certificate does not heal with retries */
    return -EAGAIN;
nomem:
    cu->slist_free_all(list);
    return -ENOMEM;
}

/* Turns a final non-2xx answer into one clear line and an errno. */
static int answer_error(const struct s3_store *s, const struct s3_call *c, const char *where,
                        char *err, size_t err_len)
{
    char code[64] = "", msg[S3_ERR_QUOTE + 1] = "";
    long st = c->status;

    if (c->body)
        (void)s3xml_error(c->body, c->body_len, code, sizeof(code), msg, sizeof(msg));
    if (strcmp(code, "InvalidAccessKeyId") == 0)
        return errbuf_fail(
            err, err_len, -EACCES,
            "%s %s: the store does not know the access key (InvalidAccessKeyId): check "
            "AWS_ACCESS_KEY_ID or the credentials file's aws_access_key_id",
            c->what, where);
    if (strcmp(code, "SignatureDoesNotMatch") == 0)
        return errbuf_fail(
            err, err_len, -EACCES,
            "%s %s: signature refused (SignatureDoesNotMatch): check "
            "AWS_SECRET_ACCESS_KEY (or the credentials file's aws_secret_access_key) and "
            "the region (%s)",
            c->what, where, s->region);
    if (strcmp(code, "InvalidToken") == 0 || strcmp(code, "ExpiredToken") == 0 ||
        strcmp(code, "TokenRefreshRequired") == 0)
        return errbuf_fail(err, err_len, -EACCES,
                           "%s %s: session token refused (%s): renew AWS_SESSION_TOKEN or the "
                           "credentials file's aws_session_token",
                           c->what, where, code);
    if (strcmp(code, "NoSuchBucket") == 0)
        return errbuf_fail(err, err_len, -ENOENT, "%s %s: bucket %s does not exist (NoSuchBucket)",
                           c->what, where, s->bucket);
    if (st == 403)
        return errbuf_fail(err, err_len, -EACCES, "%s %s: access denied (HTTP 403%s%s)%s%s",
                           c->what, where, code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
    if (st == 404 || strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchUpload") == 0)
        return errbuf_fail(err, err_len, -ENOENT, "%s %s: not found (HTTP %ld%s%s)", c->what, where,
                           st, code[0] ? " " : "", code);
    if (st == 412 || strcmp(code, "BadDigest") == 0 || strcmp(code, "InvalidDigest") == 0 ||
        strcmp(code, "XAmzContentSHA256Mismatch") == 0)
        return errbuf_fail(err, err_len, -EBADMSG, "%s %s: refused (HTTP %ld %s)%s%s", c->what,
                           where, st, code, msg[0] ? ": " : "", msg);
    if (transient_status(st, c))
        return errbuf_fail(err, err_len, -EIO, "%s %s: HTTP %ld%s%s after %d attempts", c->what,
                           where, st, code[0] ? " " : "", code, s->attempts);
    return errbuf_fail(err, err_len, -EIO, "%s %s: HTTP %ld%s%s%s%s", c->what, where, st,
                       code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
}

static int s3_do_with(struct s3_store *s, CURL *h, const struct aws_creds *cr, struct s3_call *c,
                      char *err, size_t err_len);

/* Runs c with retries. Returns 0 on a 2xx answer, else a negative errno with err filled. */
static int s3_do(struct s3_store *s, struct s3_call *c, char *err, size_t err_len)
{
    struct aws_creds *cr = calloc(1, sizeof(*cr));
    CURL *h = NULL;
    int rc;

    if (!cr)
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    rc = creds_now(s, cr, err, err_len);
    if (rc == 0 && !(h = curl_pool_take(&s->handles)))
        rc = errbuf_fail(err, err_len, -ENOMEM, "libcurl: cannot create a handle");
    if (rc == 0) {
        rc = s3_do_with(s, h, cr, c, err, err_len);
        curl_pool_give(&s->handles, h);
    }
    aws_creds_clear(cr);
    free(cr);
    return rc;
}

static int s3_do_with(struct s3_store *s, CURL *h, const struct aws_creds *cr, struct s3_call *c,
                      char *err, size_t err_len)
{
    char path[S3_MAX_PATH], query[S3_MAX_QUERY], where[STORE_MAX_URL];
    char md5[32] = "", payload[SIGV4_HEX_LEN + 1], cerr[CURL_ERROR_SIZE];
    int rc, i, n;

    n = snprintf(where, sizeof(where), "s3://%s/%s", s->bucket, c->key ? c->key : "");
    if (n < 0 || (size_t)n >= sizeof(where))
        where[sizeof(where) - 1] = '\0';
    if (build_path(s, c->key, path, sizeof(path)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "%s %s: name too long", c->what, where);
    if (sigv4_canonical_query(c->params, c->n_params, query, sizeof(query)) < 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "%s %s: query too long", c->what, where);
    if (c->has_body) {
        bool want_sha = !s->tls || c->mem; /* over TLS a file part goes UNSIGNED-PAYLOAD */
        rc = body_digests(c, md5, payload, want_sha);
        if (rc != 0)
            return errbuf_fail(err, err_len, rc, "%s %s: reading the body: %s", c->what, where,
                               strerror(-rc));
        if (!want_sha)
            snprintf(payload, sizeof(payload), "%s", SIGV4_UNSIGNED_PAYLOAD);
    } else {
        snprintf(payload, sizeof(payload), "%s", SIGV4_EMPTY_SHA256);
    }
    cerr[0] = '\0';
    for (i = 0; i < s->attempts; i++) {
        if (i > 0)
            backoff(s, i - 1);
        rc = attempt(s, h, cr, c, path, query, c->send_md5 ? md5 : NULL, payload, cerr);
        if (rc == 0 && c->status / 100 == 2) {
            if (c->sink && c->status == 200 && c->delivered > 0 && c->first_etag[0])
                return errbuf_fail(err, err_len, -EBADMSG,
                                   "%s %s: the store ignored Range on a retry", c->what, where);
            if (c->sink && !c->first_etag[0])
                snprintf(c->first_etag, sizeof(c->first_etag), "%s", c->etag);
            if (c->sink && c->have_total && c->delivered < c->total) {
                /* a short body without a transport error: retried from where it stopped */
                snprintf(cerr, sizeof(cerr), "answer ended after %llu of %llu bytes",
                         (unsigned long long)c->delivered, (unsigned long long)c->total);
            } else {
                return 0;
            }
        } else if (rc == 0) {
            if (c->sink && c->delivered > 0 && c->status == 412)
                return errbuf_fail(err, err_len, -EBADMSG,
                                   "%s %s: the object changed while reading", c->what, where);
            if (!transient_status(c->status, c))
                return answer_error(s, c, where, err, err_len);
            snprintf(cerr, sizeof(cerr), "HTTP %ld", c->status);
        } else if (rc == -EAGAIN || rc == -ECONNREFUSED) {
            if (c->sink && !c->first_etag[0] && c->etag[0] && c->delivered > 0)
                snprintf(c->first_etag, sizeof(c->first_etag), "%s", c->etag);
        } else {
            if (rc == -EFBIG)
                return errbuf_fail(err, err_len, -EBADMSG, "%s %s: answer larger than allowed",
                                   c->what, where);
            if (c->sink_rc)
                return errbuf_fail(err, err_len, rc, "%s %s: stopped by the reader: %s", c->what,
                                   where, strerror(-rc));
            if (rc == -EPROTO)
                return errbuf_fail(
                    err, err_len, -ECONNREFUSED,
                    "%s %s: %s: the store's certificate is not trusted (a private CA "
                    "goes in AWS_CA_BUNDLE)",
                    c->what, where, cerr);
            return errbuf_fail(err, err_len, rc, "%s %s: %s", c->what, where,
                               cerr[0] ? cerr : strerror(-rc));
        }
        if (i + 1 < s->attempts)
            log_msg(LOG_WARN, "store: %s %s: %s; retry %d of %d", c->what, where, cerr, i + 1,
                    s->attempts - 1);
        if (rc == -ECONNREFUSED && i + 1 == s->attempts)
            return errbuf_fail(err, err_len, -ECONNREFUSED, "%s %s: cannot reach %s: %s", c->what,
                               where, s->endpoint, cerr);
    }
    if (c->status && rc == 0)
        return answer_error(s, c, where, err, err_len);
    return errbuf_fail(err, err_len, -EIO, "%s %s: %s after %d attempts", c->what, where, cerr,
                       s->attempts);
}

static int full_key(const struct s3_store *s, const char *name, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", s->prefix, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- uploads ------------------------------------------------------------------------------- */

static void upload_free(struct s3_upload *u)
{
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u->etags);
    free(u);
}

static int s3_upload_begin(struct store *st, const char *name, struct store_upload **out, char *err,
                           size_t err_len)
{
    struct s3_store *s = (struct s3_store *)st;
    struct s3_upload *u = calloc(1, sizeof(*u));

    if (!u)
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    u->s = s;
    if (full_key(s, name, u->key, sizeof(u->key)) != 0) {
        free(u);
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    }
    /* one slot per possible part, so that parallel calls never move the array (untouched
     * pages of this calloc cost no memory) */
    u->etags = calloc(STORE_MAX_PARTS, sizeof(*u->etags));
    if (!u->etags) {
        free(u);
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    }
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    *out = &u->base;
    return 0;
}

static int create_multipart(struct s3_upload *u, char *id, size_t id_len, char *err, size_t err_len)
{
    struct s3_call c = {.method = "POST",
                        .what = "create upload",
                        .key = u->key,
                        .params = {{"uploads", ""}},
                        .n_params = 1,
                        .has_body = true,
                        .mem = "",
                        .mem_len = 0,
                        .fd = -1};
    int rc = s3_do(u->s, &c, err, err_len);

    if (rc == 0 && s3xml_value(c.body ? c.body : "", c.body_len, NULL, "UploadId", id, id_len) <= 0)
        rc = errbuf_fail(err, err_len, -EBADMSG,
                         "create upload s3://%s/%s: no UploadId in the answer", u->s->bucket,
                         u->key);
    free(c.body);
    return rc;
}

static int send_part(struct s3_upload *u, const struct store_part *p, char *err, size_t err_len)
{
    char num[16], what[32];
    struct s3_call c = {.method = "PUT",
                        .what = what,
                        .key = u->key,
                        .params = {{"partNumber", num}, {"uploadId", u->upload_id}},
                        .n_params = 2,
                        .has_body = true,
                        .fd = p->fd,
                        .off = p->off,
                        .len = p->len,
                        .send_md5 = true};
    int rc;

    snprintf(num, sizeof(num), "%u", p->number);
    snprintf(what, sizeof(what), "upload part %u", p->number);
    rc = s3_do(u->s, &c, err, err_len);
    if (rc == 0 && !c.etag[0])
        rc = errbuf_fail(err, err_len, -EBADMSG, "upload part %u s3://%s/%s: no ETag in the answer",
                         p->number, u->s->bucket, u->key);
    free(c.body);
    if (rc == 0)
        memcpy(u->etags[p->number - 1], c.etag, sizeof(c.etag));
    return rc;
}

/* The multipart upload exists when this returns 0: created here (and the held part 1 sent), or
 * by the call beside this one, which this one waited for. */
static int multipart_ready(struct s3_upload *u, char *err, size_t err_len)
{
    char id[STORE_MAX_UPLOAD_ID + 1];
    int rc;

    pthread_mutex_lock(&u->mu);
    while (u->creating)
        pthread_cond_wait(&u->cv, &u->mu);
    if (u->upload_id[0] || u->create_rc) {
        rc = u->create_rc;
        pthread_mutex_unlock(&u->mu);
        return rc ? errbuf_fail(err, err_len, rc, "create upload s3://%s/%s failed in another call",
                                u->s->bucket, u->key)
                  : 0;
    }
    u->creating = true;
    pthread_mutex_unlock(&u->mu);
    rc = create_multipart(u, id, sizeof(id), err, err_len);
    pthread_mutex_lock(&u->mu);
    if (rc == 0)
        memcpy(u->upload_id, id, sizeof(id));
    else
        u->create_rc = rc;
    u->creating = false;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    if (rc == 0 && u->held) {
        rc = send_part(u, &u->held_part, err, err_len);
        if (rc == 0)
            u->held = false;
    }
    return rc;
}

static int s3_upload_part(struct store_upload *up, const struct store_part *p, char *err,
                          size_t err_len)
{
    struct s3_upload *u = (struct s3_upload *)up;

    if (p->number == 1) { /* maybe the only part: then commit sends it in one PUT */
        u->held = true;
        u->held_part = *p;
        return 0;
    }
    int rc = multipart_ready(u, err, err_len);
    return rc ? rc : send_part(u, p, err, err_len);
}

static void s3_upload_abort(struct store_upload *up)
{
    struct s3_upload *u = (struct s3_upload *)up;
    char err[512];

    if (u->upload_id[0]) {
        struct s3_call c = {.method = "DELETE",
                            .what = "abort upload",
                            .key = u->key,
                            .params = {{"uploadId", u->upload_id}},
                            .n_params = 1,
                            .fd = -1};
        if (s3_do(u->s, &c, err, sizeof(err)) != 0)
            log_msg(LOG_WARN,
                    "store: %s (the store drops it after its own expiry, or the next "
                    "start's stale-upload sweep does)",
                    err);
        else
            log_msg(LOG_INFO, "store: aborted upload of s3://%s/%s", u->s->bucket, u->key);
        free(c.body);
    }
    upload_free(u);
}

static int s3_upload_commit(struct store_upload *up, char *err, size_t err_len)
{
    struct s3_upload *u = (struct s3_upload *)up;
    struct s3_call c = {.fd = -1};
    unsigned parts = atomic_load(&up->highest);
    char *xml = NULL, code[64], msg[S3_ERR_QUOTE + 1];
    size_t cap, o = 0;
    int rc;

    if (!u->upload_id[0]) { /* part 1 alone (held) or nothing: one PUT */
        c = (struct s3_call){.method = "PUT",
                             .what = "put",
                             .key = u->key,
                             .has_body = true,
                             .send_md5 = true,
                             .fd = u->held ? u->held_part.fd : -1,
                             .off = u->held_part.off,
                             .len = u->held ? u->held_part.len : 0};
        if (!u->held) {
            c.mem = "";
            c.mem_len = 0;
        }
        rc = s3_do(u->s, &c, err, err_len);
        free(c.body);
        upload_free(u);
        return rc;
    }
    if (u->held) { /* cannot be: part 2's call sent it */
        rc = errbuf_fail(err, err_len, -EINVAL, "complete upload s3://%s/%s: part 1 not sent",
                         u->s->bucket, u->key);
        goto abort;
    }
    cap = 128 + (size_t)parts * (STORE_MAX_ETAG + 64);
    xml = malloc(cap);
    if (!xml) {
        rc = errbuf_fail(err, err_len, -ENOMEM, "out of memory");
        goto abort;
    }
    o = (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < parts; i++)
        o += (size_t)snprintf(xml + o, cap - o,
                              "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                              u->etags[i]);
    o += (size_t)snprintf(xml + o, cap - o, "</CompleteMultipartUpload>");
    c = (struct s3_call){.method = "POST",
                         .what = "complete upload",
                         .key = u->key,
                         .params = {{"uploadId", u->upload_id}},
                         .n_params = 1,
                         .has_body = true,
                         .mem = xml,
                         .mem_len = o,
                         .fd = -1};
    rc = s3_do(u->s, &c, err, err_len);
    /* S3 may answer 200 and put the error in the body */
    if (rc == 0 && c.body &&
        s3xml_error(c.body, c.body_len, code, sizeof(code), msg, sizeof(msg)) == 0)
        rc = errbuf_fail(err, err_len, -EIO, "complete upload s3://%s/%s: %s: %s", u->s->bucket,
                         u->key, code, msg);
    free(c.body);
    free(xml);
    if (rc != 0)
        goto abort;
    upload_free(u);
    return 0;
abort:
    s3_upload_abort(up);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------- */

static int s3_get(struct store *st, const char *name, store_sink_fn sink, void *arg, char *err,
                  size_t err_len)
{
    struct s3_store *s = (struct s3_store *)st;
    char key[S3_MAX_KEY + 1];
    struct s3_call c = {
        .method = "GET", .what = "get", .key = key, .sink = sink, .sink_arg = arg, .fd = -1};
    int rc;

    if (full_key(s, name, key, sizeof(key)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    rc = s3_do(s, &c, err, err_len);
    free(c.body);
    return rc;
}

struct list_ctx {
    struct s3_store *s;
    store_list_fn fn;
    void *arg;
    size_t count;
};

static int on_listed(void *arg, const struct s3xml_object *o)
{
    struct list_ctx *l = arg;
    struct store_entry e = {.size = o->size, .mtime = o->mtime};
    size_t plen = strlen(l->s->prefix);

    if (++l->count > STORE_MAX_LISTED)
        return -E2BIG;
    if (strncmp(o->key, l->s->prefix, plen) != 0 || strlen(o->key + plen) > STORE_MAX_NAME ||
        !store_name_valid(o->key + plen, false))
        return 0; /* not ours to report (outside the prefix, or a name we never write) */
    memcpy(e.name, o->key + plen, strlen(o->key + plen) + 1);
    return l->fn(l->arg, &e);
}

static int s3_list(struct store *st, const char *prefix, store_list_fn fn, void *arg, char *err,
                   size_t err_len)
{
    struct s3_store *s = (struct s3_store *)st;
    struct list_ctx l = {s, fn, arg, 0};
    char key[S3_MAX_KEY + 1], token[STORE_MAX_NAME + 1] = "";
    bool truncated = true;
    int rc = 0;

    if (full_key(s, prefix, key, sizeof(key)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "prefix too long");
    while (truncated && rc == 0) {
        struct s3_call c = {.method = "GET",
                            .what = "list",
                            .fd = -1,
                            .params = {{"list-type", "2"}, {"prefix", key}},
                            .n_params = 2};
        if (token[0])
            c.params[c.n_params++] = (struct sigv4_param){"continuation-token", token};
        rc = s3_do(s, &c, err, err_len);
        if (rc == 0) {
            rc = s3xml_list_objects(c.body ? c.body : "", c.body_len, on_listed, &l, &truncated,
                                    token, sizeof(token));
            if (rc == -EINVAL)
                errbuf_fail(err, err_len, -EBADMSG, "list s3://%s/%s: unreadable answer", s->bucket,
                            key);
            else if (rc == -E2BIG)
                errbuf_fail(err, err_len, rc, "list s3://%s/%s: more than %d objects", s->bucket,
                            key, STORE_MAX_LISTED);
            if (rc == -EINVAL)
                rc = -EBADMSG;
            if (rc == 0 && truncated && !token[0])
                rc = errbuf_fail(err, err_len, -EBADMSG,
                                 "list s3://%s/%s: truncated without a token", s->bucket, key);
        }
        free(c.body);
    }
    return rc;
}

static int s3_remove(struct store *st, const char *name, char *err, size_t err_len)
{
    struct s3_store *s = (struct s3_store *)st;
    char key[S3_MAX_KEY + 1];
    struct s3_call c = {.method = "DELETE", .what = "remove", .key = key, .fd = -1};
    int rc;

    if (full_key(s, name, key, sizeof(key)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    rc = s3_do(s, &c, err, err_len);
    free(c.body);
    return rc;
}

struct stale_ctx {
    struct s3_store *s;
    time_t before;
    unsigned aborted, seen;
    char *err;
    size_t err_len;
};

static int on_upload(void *arg, const struct s3xml_upload *up)
{
    struct stale_ctx *x = arg;
    struct s3_upload *u;

    if (++x->seen > STORE_MAX_LISTED)
        return -E2BIG;
    if (up->initiated >= x->before || strlen(up->key) > S3_MAX_KEY ||
        strncmp(up->key, x->s->prefix, strlen(x->s->prefix)) != 0)
        return 0;
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->s = x->s;
    snprintf(u->key, sizeof(u->key), "%s", up->key);
    snprintf(u->upload_id, sizeof(u->upload_id), "%s", up->upload_id);
    s3_upload_abort(&u->base);
    x->aborted++;
    return 0;
}

static int s3_abort_stale(struct store *st, const char *prefix, time_t before, unsigned *aborted,
                          char *err, size_t err_len)
{
    struct s3_store *s = (struct s3_store *)st;
    struct stale_ctx x = {s, before, 0, 0, err, err_len};
    char key[S3_MAX_KEY + 1], nkey[S3_MAX_KEY + 1] = "", nid[STORE_MAX_UPLOAD_ID + 1] = "";
    bool truncated = true;
    int rc = 0;

    if (full_key(s, prefix, key, sizeof(key)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "prefix too long");
    while (truncated && rc == 0) {
        struct s3_call c = {.method = "GET",
                            .what = "list uploads",
                            .fd = -1,
                            .params = {{"uploads", ""}, {"prefix", key}},
                            .n_params = 2};
        if (nkey[0]) {
            c.params[c.n_params++] = (struct sigv4_param){"key-marker", nkey};
            c.params[c.n_params++] = (struct sigv4_param){"upload-id-marker", nid};
        }
        rc = s3_do(s, &c, err, err_len);
        if (rc == 0) {
            rc = s3xml_list_uploads(c.body ? c.body : "", c.body_len, on_upload, &x, &truncated,
                                    nkey, sizeof(nkey), nid, sizeof(nid));
            if (rc != 0)
                rc = errbuf_fail(err, err_len, rc == -EINVAL ? -EBADMSG : rc,
                                 "list uploads s3://%s/%s: %s", s->bucket, key,
                                 rc == -EINVAL ? "unreadable answer" : strerror(-rc));
            if (rc == 0 && truncated && !nkey[0])
                rc = errbuf_fail(err, err_len, -EBADMSG,
                                 "list uploads s3://%s/%s: truncated without a marker", s->bucket,
                                 key);
        }
        free(c.body);
    }
    *aborted = x.aborted;
    return rc;
}

const struct store_ops store_s3_ops = {
    .scheme = "s3",
    .open = s3_open,
    .close = s3_close,
    .upload_begin = s3_upload_begin,
    .upload_part = s3_upload_part,
    .upload_commit = s3_upload_commit,
    .upload_abort = s3_upload_abort,
    .get = s3_get,
    .list = s3_list,
    .remove = s3_remove,
    .abort_stale = s3_abort_stale,
};
