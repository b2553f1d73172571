/* restore.c - quorum-loss restore for reset-member: fetch (libcurl, loaded with dlopen only when
 * a URL is fetched), validate (bbolt metas and the trailing sha256), `etcdutl|etcdctl snapshot
 * restore` into a staging dir, swap, marker.
 *
 * Order, so that a kill -9 anywhere converges on rerun: fetch -> validate -> (nothing touched
 * yet) restore into staging (a leftover staging dir is removed first) -> move the data dir aside
 * -> rename staging into place -> marker (last proof of the restore) -> env -> state. Without the
 * marker a rerun restores again (the half-done data dir is moved aside like any other); with it
 * the rerun takes the normal table. The decision is decide.c's; membership changes are act.c's. */
#include "restore.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "act.h"
#include "curl_dl.h"
#include "datadir.h"
#include "dirsync.h"
#include "hex.h"
#include "bounds.h"
#include "clock.h"
#include "log.h"
#include "restore_store.h"

#define RESTORE_SNIFF_LEN 64
#define RESTORE_TOKEN_HEX 8  /* digest hex digits in the new token */
#define RESTORE_TOOL_ARGS 17 /* tool snapshot restore FILE + 5 flags + the 3 bump words */

static double now_ms(void)
{
    return (double)clock_mono_ns() / 1e6;
}

static int path_with(const char *data_dir, const char *suffix, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", data_dir, suffix);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO;
        got += (size_t)r;
    }
    return 0;
}

/* ---- validation --------------------------------------------------------------------------- */

const char *restore_sniff(const uint8_t *buf, size_t len)
{
    size_t i = 0, printable = 0;

    if (len == 0)
        return "an empty file";
    /* bbolt's first page is meta page 0: its header starts with page id 0 (8 zero bytes) */
    if (len >= 8 && memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0)
        return NULL;
    if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF)
        i = 3; /* UTF-8 BOM */
    while (i < len && isspace(buf[i]))
        i++;
    if (i < len && buf[i] == '<')
        return "an HTML/XML page (an object store's or proxy's error page?)";
    if (i < len && (buf[i] == '{' || buf[i] == '['))
        return "a JSON document (an API error?)";
    for (size_t k = 0; k < len; k++)
        if (isprint(buf[k]) || isspace(buf[k]))
            printable++;
    if (printable == len)
        return "text";
    return "not a bbolt file (meta page 0 must start with page id 0)";
}

static int hash_range(int fd, uint64_t len, uint8_t out[RESTORE_DIGEST_LEN], char *err,
                      size_t err_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = malloc(RESTORE_READ_CHUNK);
    uint64_t off = 0;
    unsigned int olen = 0;
    double t0 = now_ms(), last = t0;
    int rc = 0;

    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = act_fail(err, err_len, -ENOMEM, "sha256: out of memory");
        goto out;
    }
    while (off < len) {
        size_t n = len - off < RESTORE_READ_CHUNK ? (size_t)(len - off) : RESTORE_READ_CHUNK;
        rc = pread_all(fd, buf, n, off);
        if (rc != 0) {
            act_fail(err, err_len, rc, "read at %" PRIu64 ": %s", off, strerror(-rc));
            goto out;
        }
        if (EVP_DigestUpdate(ctx, buf, n) != 1) {
            rc = act_fail(err, err_len, -EIO, "sha256 update failed");
            goto out;
        }
        off += n;
        if (now_ms() - last >= RESTORE_PROGRESS_MS) {
            last = now_ms();
            log_msg(LOG_INFO, "restore: hashing snapshot, %" PRIu64 " of %" PRIu64 " MiB",
                    off >> 20, len >> 20);
        }
    }
    if (EVP_DigestFinal_ex(ctx, out, &olen) != 1 || olen != RESTORE_DIGEST_LEN)
        rc = act_fail(err, err_len, -EIO, "sha256 final failed");
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

int restore_validate(const char *path, struct restore_snapshot *s, char *err, size_t err_len)
{
    return restore_validate_hashed(path, NULL, s, err, err_len);
}

int restore_validate_hashed(const char *path, const uint8_t data_sha256[32],
                            struct restore_snapshot *s, char *err, size_t err_len)
{
    uint8_t head[RESTORE_SNIFF_LEN], *page = NULL, digest[RESTORE_DIGEST_LEN] = {0},
                                     want[RESTORE_DIGEST_LEN];
    struct bbolt_meta m0, m1;
    struct stat st;
    const char *what;
    size_t head_len;
    int fd, rc = 0, v0, v1 = -EINVAL;

    memset(s, 0, sizeof(*s));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return act_fail(err, err_len, -errno, "open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = act_fail(err, err_len, -errno, "stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = act_fail(err, err_len, -EINVAL, "%s is not a regular file", path);
        goto out;
    }
    s->size = (uint64_t)st.st_size;
    head_len = s->size < sizeof(head) ? (size_t)s->size : sizeof(head);
    rc = pread_all(fd, head, head_len, 0);
    if (rc != 0) {
        act_fail(err, err_len, rc, "read %s: %s", path, strerror(-rc));
        goto out;
    }
    what = restore_sniff(head, head_len);
    if (what) {
        rc = act_fail(err, err_len, -EINVAL, "%s is not an etcd snapshot: %s (%" PRIu64 " bytes)",
                      path, what, s->size);
        goto out;
    }
    if (s->size < 2 * RESTORE_MIN_PAGE + RESTORE_DIGEST_LEN) {
        rc = act_fail(err, err_len, -EINVAL, "%s: %" PRIu64 " bytes is too small for a snapshot",
                      path, s->size);
        goto out;
    }
    /* meta 0 tells the page size; meta 1 sits one page further */
    page = malloc(RESTORE_MAX_PAGE);
    if (!page) {
        rc = act_fail(err, err_len, -ENOMEM, "out of memory");
        goto out;
    }
    rc = pread_all(fd, page, RESTORE_MIN_PAGE, 0);
    if (rc != 0) {
        act_fail(err, err_len, rc, "read %s: %s", path, strerror(-rc));
        goto out;
    }
    v0 = datadir_bbolt_meta(page, RESTORE_MIN_PAGE, &m0);
    s->page_size = v0 == 0 ? m0.page_size : 0;
    if (v0 != 0) {
        /* meta 0 broken: bbolt would use meta 1; find it at the usual page sizes */
        for (uint32_t ps = 4096; ps <= RESTORE_MAX_PAGE && v1 != 0; ps *= 2) {
            if ((uint64_t)ps + RESTORE_MIN_PAGE > s->size)
                break;
            if (pread_all(fd, page, RESTORE_MIN_PAGE, ps) == 0 &&
                datadir_bbolt_meta(page, RESTORE_MIN_PAGE, &m1) == 0 && m1.page_size == ps) {
                v1 = 0;
                s->page_size = ps;
            }
        }
    } else if ((uint64_t)s->page_size + RESTORE_MIN_PAGE <= s->size &&
               pread_all(fd, page, RESTORE_MIN_PAGE, s->page_size) == 0) {
        v1 = datadir_bbolt_meta(page, RESTORE_MIN_PAGE, &m1);
    }
    s->valid_metas = (v0 == 0) + (v1 == 0);
    if (s->valid_metas == 0) {
        rc = act_fail(err, err_len, -EINVAL,
                      "%s: no valid bbolt meta page (magic, version, checksum)", path);
        goto out;
    }
    if (s->page_size < RESTORE_MIN_PAGE || s->page_size > RESTORE_MAX_PAGE ||
        (s->page_size & (s->page_size - 1)) != 0) {
        rc = act_fail(err, err_len, -EINVAL, "%s: implausible bbolt page size %" PRIu32, path,
                      s->page_size);
        goto out;
    }
    if ((s->size - RESTORE_DIGEST_LEN) % s->page_size != 0) {
        rc = act_fail(err, err_len, -EINVAL,
                      "%s: size %" PRIu64 " is not whole %" PRIu32 "-byte pages + a 32-byte sha256 "
                      "(truncated, or a raw db copy without the digest?)",
                      path, s->size, s->page_size);
        goto out;
    }
    s->db_size = s->size - RESTORE_DIGEST_LEN;
    {
        const struct bbolt_meta *m = v0 == 0 && (v1 != 0 || m0.txid >= m1.txid) ? &m0 : &m1;
        s->txid = m->txid;
        if (m->high_water_pgid > s->db_size / s->page_size) {
            rc = act_fail(err, err_len, -EINVAL,
                          "%s: bbolt high-water page %" PRIu64 " lies beyond the %" PRIu64
                          " pages in the file (truncated)",
                          path, m->high_water_pgid, s->db_size / s->page_size);
            goto out;
        }
    }
    rc = pread_all(fd, want, RESTORE_DIGEST_LEN, s->db_size);
    if (rc != 0) {
        act_fail(err, err_len, rc, "read %s: %s", path, strerror(-rc));
        goto out;
    }
    if (data_sha256)
        memcpy(digest, data_sha256, RESTORE_DIGEST_LEN);
    else if ((rc = hash_range(fd, s->db_size, digest, err, err_len)) != 0)
        goto out;
    if (memcmp(digest, want, RESTORE_DIGEST_LEN) != 0) {
        char a[2 * RESTORE_DIGEST_LEN + 1], b[2 * RESTORE_DIGEST_LEN + 1];
        hex_encode(want, RESTORE_DIGEST_LEN, a);
        hex_encode(digest, RESTORE_DIGEST_LEN, b);
        rc = act_fail(err, err_len, -EINVAL,
                      "%s: sha256 mismatch: the file says %s, its data hashes to %s", path, a, b);
        goto out;
    }
    hex_encode(digest, RESTORE_DIGEST_LEN, s->sha256);
out:
    free(page);
    close(fd);
    return rc;
}

/* The trailing digest of a file, unverified (cheap: the marker check). */
static int trailing_digest(const char *path, char hex[2 * RESTORE_DIGEST_LEN + 1])
{
    uint8_t d[RESTORE_DIGEST_LEN];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || st.st_size < RESTORE_DIGEST_LEN) {
        close(fd);
        return -EINVAL;
    }
    rc = pread_all(fd, d, RESTORE_DIGEST_LEN, (uint64_t)st.st_size - RESTORE_DIGEST_LEN);
    close(fd);
    if (rc == 0)
        hex_encode(d, RESTORE_DIGEST_LEN, hex);
    return rc;
}

/* ---- marker ------------------------------------------------------------------------------- */

static int set_field(char *dst, size_t cap, const char *v, size_t vlen)
{
    if (vlen >= cap)
        return -EINVAL;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    return 0;
}

int restore_marker_parse(const char *buf, size_t len, struct restore_marker *m)
{
    bool have_role = false, have_cid = false, have_src = false, have_sha = false, have_tok = false;
    bool have_obj = false, have_osha = false;
    size_t off = 0;

    memset(m, 0, sizeof(*m));
    if (len > RESTORE_MAX_MARKER)
        return -EINVAL;
    while (off < len) {
        const char *line = buf + off, *nl = memchr(line, '\n', len - off), *eq;
        size_t ll, kl, vl;
        const char *v;

        if (!nl)
            return -EINVAL; /* a torn write; we write atomically, so never ours */
        ll = (size_t)(nl - line);
        off += ll + 1;
        if (ll == 0)
            continue;
        eq = memchr(line, '=', ll);
        if (!eq)
            return -EINVAL;
        kl = (size_t)(eq - line);
        v = eq + 1;
        vl = ll - kl - 1;
        if (memchr(v, '\0', vl))
            return -EINVAL;
        if (kl == 4 && memcmp(line, "role", 4) == 0) {
            if (have_role)
                return -EINVAL; /* duplicate keys: not written by us */
            if (vl == 8 && memcmp(v, "restorer", 8) == 0)
                m->restorer = true;
            else if (!(vl == 4 && memcmp(v, "peer", 4) == 0))
                return -EINVAL;
            have_role = true;
        } else if (kl == 6 && memcmp(line, "source", 6) == 0) {
            if (have_src)
                return -EINVAL;
            have_src = true;
            if (set_field(m->source, sizeof(m->source), v, vl) != 0)
                return -EINVAL;
        } else if (kl == 6 && memcmp(line, "sha256", 6) == 0) {
            if (have_sha)
                return -EINVAL;
            have_sha = true;
            if (set_field(m->sha256, sizeof(m->sha256), v, vl) != 0)
                return -EINVAL;
        } else if (kl == 5 && memcmp(line, "token", 5) == 0) {
            if (have_tok)
                return -EINVAL;
            have_tok = true;
            if (set_field(m->token, sizeof(m->token), v, vl) != 0)
                return -EINVAL;
        } else if (kl == 6 && memcmp(line, "object", 6) == 0) {
            if (have_obj)
                return -EINVAL;
            have_obj = true;
            if (set_field(m->object, sizeof(m->object), v, vl) != 0)
                return -EINVAL;
        } else if (kl == 13 && memcmp(line, "object_sha256", 13) == 0) {
            if (have_osha)
                return -EINVAL;
            have_osha = true;
            if (set_field(m->object_sha256, sizeof(m->object_sha256), v, vl) != 0)
                return -EINVAL;
        } else if (kl == 10 && memcmp(line, "cluster_id", 10) == 0) {
            uint64_t x = 0;
            if (have_cid || vl == 0 || vl > 16)
                return -EINVAL;
            for (size_t i = 0; i < vl; i++) {
                int c = (unsigned char)v[i], d;
                if (c >= '0' && c <= '9')
                    d = c - '0';
                else if (c >= 'a' && c <= 'f')
                    d = c - 'a' + 10;
                else
                    return -EINVAL;
                x = x << 4 | (uint64_t)d;
            }
            if (x == 0)
                return -EINVAL;
            m->cluster_id = x;
            have_cid = true;
        }
    }
    return have_role && have_cid ? 0 : -EINVAL;
}

int restore_marker_render(const struct restore_marker *m, char *out, size_t out_len)
{
    int n;

    if (strchr(m->source, '\n') || strchr(m->token, '\n') || strchr(m->sha256, '\n') ||
        strchr(m->object, '\n') || strchr(m->object_sha256, '\n'))
        return -EINVAL;
    n = snprintf(out, out_len,
                 "role=%s\nsource=%s\nsha256=%s\ntoken=%s\ncluster_id=%" PRIx64 "\n%s%s%s%s%s%s",
                 m->restorer ? "restorer" : "peer", m->source, m->sha256, m->token, m->cluster_id,
                 m->object[0] ? "object=" : "", m->object, m->object[0] ? "\n" : "",
                 m->object_sha256[0] ? "object_sha256=" : "", m->object_sha256,
                 m->object_sha256[0] ? "\n" : "");
    if (n < 0 || (size_t)n >= out_len || (size_t)n > RESTORE_MAX_MARKER)
        return -ENOSPC;
    return 0;
}

int restore_marker_read(const char *data_dir, struct restore_marker *m)
{
    char path[PATH_MAX], buf[RESTORE_MAX_MARKER + 1];
    size_t got;
    int rc;

    memset(m, 0, sizeof(*m));
    rc = path_with(data_dir, RESTORE_MARKER_SUFFIX, path, sizeof(path));
    if (rc != 0)
        return rc;
    rc = act_read_small(path, buf, sizeof(buf), &got);
    if (rc != 0)
        return rc == -EFBIG ? -EINVAL : rc;
    return restore_marker_parse(buf, got, m);
}

int restore_marker_write(const char *data_dir, const struct restore_marker *m, char *err,
                         size_t err_len)
{
    char path[PATH_MAX], buf[RESTORE_MAX_MARKER + 1];
    int rc = path_with(data_dir, RESTORE_MARKER_SUFFIX, path, sizeof(path));

    if (rc != 0)
        return act_fail(err, err_len, rc, "%s: path too long", data_dir);
    rc = restore_marker_render(m, buf, sizeof(buf));
    if (rc != 0)
        return act_fail(err, err_len, rc, "marker does not fit or holds a newline");
    return act_write_atomic(path, buf, strlen(buf), err, err_len);
}

bool restore_is_url(const char *source)
{
    return strncmp(source, "http://", 7) == 0 || strncmp(source, "https://", 8) == 0 ||
           restore_store_is_url(source);
}

void restore_facts(const char *data_dir, const char *source, bool restorer, struct decide_facts *f)
{
    struct restore_marker m;

    f->restore_requested = source && source[0];
    f->restore_restorer = restorer;
    f->restore_done = false;
    f->restore_cluster_id = 0;
    if (!f->restore_requested || restore_marker_read(data_dir, &m) != 0)
        return;
    if (m.restorer != restorer || strcmp(m.source, source) != 0)
        return;
    if (restorer && !restore_is_url(source)) {
        char hex[2 * RESTORE_DIGEST_LEN + 1];
        /* the same path with another snapshot in it is another request */
        if (trailing_digest(source, hex) == 0 && strcmp(hex, m.sha256) != 0)
            return;
    }
    f->restore_done = true;
    f->restore_cluster_id = m.cluster_id;
}

int restore_new_token(const char *token, const char *sha256_hex, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s-restored-%.*s", token, RESTORE_TOKEN_HEX, sha256_hex);
    return n < 0 || (size_t)n >= out_len || strlen(sha256_hex) < RESTORE_TOKEN_HEX ? -ENOSPC : 0;
}

int restore_peer_done(const char *data_dir, const char *source, uint64_t cluster_id, char *err,
                      size_t err_len)
{
    struct restore_marker m;
    int n, rc;

    memset(&m, 0, sizeof(m));
    m.restorer = false;
    m.cluster_id = cluster_id;
    n = snprintf(m.source, sizeof(m.source), "%s", source);
    if (n < 0 || (size_t)n >= sizeof(m.source))
        return act_fail(err, err_len, -ENAMETOOLONG, "--restore-from too long");
    rc = restore_marker_write(data_dir, &m, err, err_len);
    if (rc == 0)
        act_crash_point("peer-marker");
    return rc;
}

/* ---- fetch -------------------------------------------------------------------------------- */

struct download {
    int fd;
    uint64_t written;
    double last_log, t0;
    int write_errno;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct download *d = arg;
    size_t len = size * nmemb, off = 0;

    if (d->written + len > RESTORE_MAX_BYTES) {
        d->too_big = true;
        return 0;
    }
    while (off < len) {
        ssize_t w = write(d->fd, ptr + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            d->write_errno = errno;
            return 0; /* aborts the transfer */
        }
        off += (size_t)w;
    }
    d->written += len;
    return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct download *d = arg;
    double t = now_ms();

    (void)ultotal;
    (void)ulnow;
    if (t - d->last_log >= RESTORE_PROGRESS_MS) {
        d->last_log = t;
        if (dltotal > 0)
            log_msg(LOG_INFO, "restore: downloaded %" PRId64 " of %" PRId64 " MiB in %.0f s",
                    (int64_t)(dlnow >> 20), (int64_t)(dltotal >> 20), (t - d->t0) / 1e3);
        else
            log_msg(LOG_INFO, "restore: downloaded %" PRId64 " MiB in %.0f s",
                    (int64_t)(dlnow >> 20), (t - d->t0) / 1e3);
    }
    return 0;
}

/* Download c->source to path. Returns 0, -EINVAL if the server refused (HTTP error), or
 * another negative errno. */
static int fetch_url(const struct restore_config *c, const char *path, char *err, size_t err_len)
{
    struct download d = {.fd = -1};
    const struct curl_dl *curl;
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *h = NULL;
    CURLcode cc;
    long status = 0;
    int rc = 0;

    curl = curl_dl_get(err, err_len);
    if (!curl) {
        size_t n = strlen(err);
        if (n < err_len)
            snprintf(err + n, err_len - n, " (needed to download a --restore-from URL)");
        return -ENOENT;
    }
    d.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (d.fd < 0)
        return act_fail(err, err_len, -errno, "create %s: %s", path, strerror(errno));
    if (!(h = curl->easy_init())) {
        rc = act_fail(err, err_len, -ENOMEM, "libcurl init failed");
        goto out;
    }
    d.t0 = d.last_log = now_ms();
    curl->easy_setopt(h, CURLOPT_URL, c->source);
    curl->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl->easy_setopt(h, CURLOPT_WRITEDATA, &d);
    curl->easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl->easy_setopt(h, CURLOPT_XFERINFODATA, &d);
    curl->easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl->easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl->easy_setopt(h, CURLOPT_MAXREDIRS, (long)RESTORE_MAX_REDIRECTS);
    curl->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)RESTORE_CONNECT_TIMEOUT_MS);
    curl->easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)RESTORE_LOW_SPEED_SECONDS);
    if (strncmp(c->source, "https://", 8) == 0) {
        /* an agent's /snapshot wants our client cert; an object store's public CA comes from
         * the system store, which OpenSSL consults as well */
        if (c->cacert && c->cacert[0])
            curl->easy_setopt(h, CURLOPT_CAINFO, c->cacert);
        if (c->cert && c->cert[0])
            curl->easy_setopt(h, CURLOPT_SSLCERT, c->cert);
        if (c->key && c->key[0])
            curl->easy_setopt(h, CURLOPT_SSLKEY, c->key);
    }
    log_msg(LOG_INFO, "restore: downloading %s to %s", c->source, path);
    cc = curl->easy_perform(h);
    curl->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        if (d.too_big)
            rc = act_fail(err, err_len, -EFBIG, "download larger than %llu bytes",
                          (unsigned long long)RESTORE_MAX_BYTES);
        else if (d.write_errno)
            rc = act_fail(err, err_len, -d.write_errno, "writing %s: %s", path,
                          strerror(d.write_errno));
        else if (cc == CURLE_HTTP_RETURNED_ERROR)
            rc = act_fail(err, err_len, -EINVAL, "%s answered HTTP %ld", c->source, status);
        else
            rc = act_fail(err, err_len, -EIO, "download %s: %s", c->source,
                          cerr[0] ? cerr : curl->easy_strerror(cc));
        goto out;
    }
    if (fsync(d.fd) != 0) {
        rc = act_fail(err, err_len, -errno, "fsync %s: %s", path, strerror(errno));
        goto out;
    }
    log_msg(LOG_INFO, "restore: downloaded %" PRIu64 " bytes in %.1f s (HTTP %ld)", d.written,
            (now_ms() - d.t0) / 1e3, status);
out:
    if (h)
        curl->easy_cleanup(h);
    close(d.fd);
    if (rc != 0)
        (void)unlink(path);
    return rc;
}

/* ---- the restore tool --------------------------------------------------------------------- */

static bool in_path(const char *prog, char *out, size_t out_len)
{
    const char *p = getenv("PATH");
    char dirs[CONFIG_MAX_VALUE];
    char *save = NULL, *dir;
    int n;

    n = snprintf(dirs, sizeof(dirs), "%s", p && p[0] ? p : "/usr/local/bin:/usr/bin:/bin");
    if (n < 0 || (size_t)n >= sizeof(dirs))
        return false;
    for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        n = snprintf(out, out_len, "%s/%s", dir, prog);
        if (n > 0 && (size_t)n < out_len && access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 ? -1 : 0;
}

static int rm_tree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    return nftw(path, rm_entry, RESTORE_NFTW_FDS, FTW_DEPTH | FTW_PHYS) != 0 ? -errno : 0;
}

/* Run argv with a clean environment (no ETCDCTL_* that could clash with the flags), its
 * output on our stderr (stdout carries our one JSON line), bounded by timeout_ms. */
static int run_tool(char *const argv[], int timeout_ms, char *err, size_t err_len)
{
    char path_env[CONFIG_MAX_VALUE];
    const char *p = getenv("PATH");
    char *envp[] = {path_env, (char *)"ETCDCTL_API=3", NULL};
    double deadline = now_ms() + timeout_ms;
    pid_t pid;
    int status, n;

    n = snprintf(path_env, sizeof(path_env), "PATH=%s", p ? p : "/usr/bin:/bin");
    if (n < 0 || (size_t)n >= sizeof(path_env))
        return act_fail(err, err_len, -E2BIG, "PATH too long");
    pid = fork();
    if (pid < 0)
        return act_fail(err, err_len, -errno, "fork: %s", strerror(errno));
    if (pid == 0) {
        (void)dup2(2, 1);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return act_fail(err, err_len, -errno, "waitpid: %s", strerror(errno));
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            return act_fail(err, err_len, -ETIMEDOUT, "%s did not finish within %d ms", argv[0],
                            timeout_ms);
        }
        struct timespec ts = {0, RESTORE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return act_fail(err, err_len, -EIO, "%s snapshot restore exited %d (its output is above)",
                        argv[0], WEXITSTATUS(status));
    return act_fail(err, err_len, -EIO, "%s snapshot restore killed by signal %d", argv[0],
                    WTERMSIG(status));
}

/* ---- the revision bump: what the tool's --help lists ------------------------------------- */

/* The flag a help line defines: its first word after blanks and an optional "-x, ". Sets
 * name and nlen, or returns false for a line that defines none. */
static bool help_line_flag(const char *line, size_t len, const char **name, size_t *nlen)
{
    size_t i = 0, j;

    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (len - i >= 4 && line[i] == '-' && line[i + 1] != '-' && line[i + 2] == ',' &&
        line[i + 3] == ' ') {
        i += 4;
        while (i < len && line[i] == ' ')
            i++;
    }
    if (len - i < 3 || line[i] != '-' || line[i + 1] != '-')
        return false;
    i += 2;
    for (j = i; j < len && line[j] != ' ' && line[j] != '\t' && line[j] != '=' && line[j] != '[';
         j++)
        ;
    if (j == i)
        return false;
    *name = line + i;
    *nlen = j - i;
    return true;
}

bool restore_help_has_bump(const char *help, size_t len)
{
    bool bump = false, mark = false;
    size_t i = 0;

    while (i < len) {
        const char *line = help + i, *nl = memchr(line, '\n', len - i), *name;
        size_t ll = nl ? (size_t)(nl - line) : len - i, nlen;

        if (help_line_flag(line, ll, &name, &nlen)) {
            bump = bump || (nlen == 13 && memcmp(name, "bump-revision", 13) == 0);
            mark = mark || (nlen == 14 && memcmp(name, "mark-compacted", 14) == 0);
        }
        i += ll + 1;
    }
    return bump && mark;
}

const char *restore_bump_name(enum restore_bump b)
{
    switch (b) {
    case RESTORE_BUMP_APPLIED:
        return "applied";
    case RESTORE_BUMP_UNSUPPORTED:
        return "unsupported";
    case RESTORE_BUMP_OFF:
        break;
    }
    return "off";
}

/* `tool snapshot restore --help`, stdout and stderr, at most RESTORE_MAX_HELP bytes into buf
 * (*len set), within timeout_ms; the exit status does not matter (the text does). Returns 0
 * or a negative errno (the tool could not be run or did not finish). */
static int tool_help(const char *tool, char *buf, size_t *len, int timeout_ms)
{
    char path_env[CONFIG_MAX_VALUE], a_tool[PATH_MAX];
    const char *p = getenv("PATH");
    char *envp[] = {path_env, (char *)"ETCDCTL_API=3", NULL};
    char *argv[] = {a_tool, (char *)"snapshot", (char *)"restore", (char *)"--help", NULL};
    double deadline = now_ms() + timeout_ms;
    int fds[2], status, n, rc = 0;
    pid_t pid;

    *len = 0;
    n = snprintf(path_env, sizeof(path_env), "PATH=%s", p ? p : "/usr/bin:/bin");
    if (n < 0 || (size_t)n >= sizeof(path_env))
        return -E2BIG;
    n = snprintf(a_tool, sizeof(a_tool), "%s", tool);
    if (n < 0 || (size_t)n >= sizeof(a_tool))
        return -ENAMETOOLONG;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            (void)dup2(null, 0);
        (void)dup2(fds[1], 1);
        (void)dup2(fds[1], 2);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        double left = deadline - now_ms();
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        ssize_t got;

        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        n = poll(&pfd, 1, (int)left + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            continue;
        if (*len < RESTORE_MAX_HELP) {
            got = read(fds[0], buf + *len, RESTORE_MAX_HELP - *len);
        } else {
            char sink[4096]; /* more than we read: drained so the tool can exit */
            got = read(fds[0], sink, sizeof(sink));
            if (got > 0)
                continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = got < 0 ? -errno : 0;
            break;
        }
        *len += (size_t)got;
    }
    close(fds[0]);
    if (rc != 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return rc;
}

/* The bump flags for this tool (appended to argv at *argc), r->bump set; the warning line
 * when the tool lacks them. */
static void bump_flags(const struct restore_config *c, const char *tool, char *num, size_t num_len,
                       char **argv, int *argc, struct restore_result *r)
{
    static char help[RESTORE_MAX_HELP];
    size_t len = 0;
    int timeout = c->timeout_ms < RESTORE_HELP_TIMEOUT_MS ? c->timeout_ms : RESTORE_HELP_TIMEOUT_MS;
    int rc, n;

    r->bump = RESTORE_BUMP_OFF;
    if (c->bump_revision == 0)
        return;
    rc = tool_help(tool, help, &len, timeout);
    n = snprintf(num, num_len, "%" PRIu64, c->bump_revision);
    if (rc == 0 && n > 0 && (size_t)n < num_len && restore_help_has_bump(help, len)) {
        r->bump = RESTORE_BUMP_APPLIED;
        argv[(*argc)++] = (char *)"--bump-revision";
        argv[(*argc)++] = num;
        argv[(*argc)++] = (char *)"--mark-compacted";
        return;
    }
    r->bump = RESTORE_BUMP_UNSUPPORTED;
    cJSON *f = cJSON_CreateObject();
    if (f) {
        cJSON_AddStringToObject(f, "tool", r->tool);
        cJSON_AddNumberToObject(f, "bump_revision", (double)c->bump_revision);
        if (rc != 0)
            cJSON_AddStringToObject(f, "help_error", strerror(-rc));
    }
    log_event(LOG_WARN,
              "restore: the restore tool has no --bump-revision/--mark-compacted (etcd 3.4's "
              "etcdctl): restoring without a revision bump, so clients and watch caches that saw "
              "revisions newer than the snapshot will not re-list by themselves (restart them)",
              f);
}

static int write_state(const struct restore_config *c, char *err, size_t err_len)
{
    char buf[ACT_MAX_FILE];
    int n, rc;

    if (c->env_file && c->env_file[0]) {
        /* etcd ignores --initial-cluster once a WAL exists; written for consistency: this
         * member is the whole cluster until the others are added */
        n = snprintf(buf, sizeof(buf),
                     "ETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER=%s=%s\n", c->name,
                     c->peer_url);
        if (n < 0 || (size_t)n >= sizeof(buf))
            return act_fail(err, err_len, -ENOSPC, "env file too long");
        rc = act_write_atomic(c->env_file, buf, (size_t)n, err, err_len);
        if (rc != 0)
            return rc;
        act_crash_point("env");
    }
    rc = act_write_atomic(c->state_file, "new\n", 4, err, err_len);
    if (rc != 0)
        return rc;
    act_crash_point("state");
    return 0;
}

int restore_check(const struct restore_config *c, struct restore_result *r, char *err,
                  size_t err_len)
{
    int rc;

    memset(r, 0, sizeof(*r));
    if (restore_is_url(c->source))
        return 0;
    double t0 = now_ms();
    rc = restore_validate(c->source, &r->snap, err, err_len);
    r->validate_ms = now_ms() - t0;
    if (rc != 0) {
        r->not_snapshot = true;
        r->failed_step = "validate";
    }
    return rc;
}

int restore_run(const struct restore_config *c, struct restore_result *r, char *err, size_t err_len)
{
    char download[PATH_MAX], staging[PATH_MAX], dir[PATH_MAX], tool[PATH_MAX], ic[ACT_MAX_FILE];
    const char *file = c->source;
    struct datadir_report rep;
    struct restore_marker m;
    struct restore_object obj = {0};
    double t0;
    int rc, n;

    memset(r, 0, sizeof(*r));
    if (path_with(c->data_dir, RESTORE_DOWNLOAD_SUFFIX, download, sizeof(download)) != 0 ||
        path_with(c->data_dir, RESTORE_STAGING_SUFFIX, staging, sizeof(staging)) != 0 ||
        act_parent_of(c->data_dir, dir, sizeof(dir)) != 0)
        return act_fail(err, err_len, -ENAMETOOLONG, "%s: path too long", c->data_dir);

    /* 1. fetch: nothing but the download file is written; a store URL is resolved here,
     * once, and what it resolved to goes into the marker */
    if (restore_is_url(c->source)) {
        r->failed_step = "fetch";
        t0 = now_ms();
        if (restore_store_is_url(c->source)) {
            rc = restore_store_fetch(c->source, c->identity_file, download, RESTORE_MAX_BYTES, &obj,
                                     err, err_len);
            if (rc == 0) {
                memcpy(r->object, obj.name, sizeof(r->object));
                memcpy(r->object_sha256, obj.object_sha256, sizeof(r->object_sha256));
            }
        } else {
            rc = fetch_url(c, download, err, err_len);
        }
        r->fetch_ms = now_ms() - t0;
        if (rc != 0) {
            r->not_snapshot = true; /* only the download file was written, and it is gone */
            return rc;
        }
        file = download;
        act_crash_point("fetch");
    }

    /* 2. validate before touching any data */
    r->failed_step = "validate";
    t0 = now_ms();
    rc =
        restore_validate_hashed(file, obj.name[0] ? obj.data_sha256 : NULL, &r->snap, err, err_len);
    r->validate_ms = now_ms() - t0;
    if (rc != 0) {
        r->not_snapshot = true;
        goto out;
    }
    if (obj.db_sha256[0] && strcmp(obj.db_sha256, r->snap.sha256) != 0) {
        r->not_snapshot = true;
        rc = act_fail(err, err_len, -EBADMSG,
                      "%s: the snapshot's sha256 %.16s... differs from its manifest's db_sha256 "
                      "%.16s...",
                      obj.url, r->snap.sha256, obj.db_sha256);
        goto out;
    }
    rc = restore_new_token(c->token, r->snap.sha256, r->token, sizeof(r->token));
    if (rc != 0) {
        act_fail(err, err_len, rc, "--initial-cluster-token too long");
        goto out;
    }

    /* 3. restore into staging (a leftover from a killed run is removed first) */
    r->failed_step = "restore";
    if (c->tool && c->tool[0]) {
        n = snprintf(tool, sizeof(tool), "%s", c->tool);
        if (n < 0 || (size_t)n >= sizeof(tool)) {
            rc = act_fail(err, err_len, -ENAMETOOLONG, "restore tool path too long");
            goto out;
        }
    } else if (!in_path("etcdutl", tool, sizeof(tool)) && !in_path("etcdctl", tool, sizeof(tool))) {
        rc = act_fail(err, err_len, -ENOENT, "neither etcdutl nor etcdctl is in PATH");
        goto out;
    }
    {
        const char *base = strrchr(tool, '/') ? strrchr(tool, '/') + 1 : tool;
        size_t bl = strnlen(base, sizeof(r->tool) - 1);
        memcpy(r->tool, base, bl); /* a file name fits NAME_MAX */
        r->tool[bl] = '\0';
    }
    rc = rm_tree(staging);
    if (rc != 0) {
        act_fail(err, err_len, rc, "removing the leftover %s: %s", staging, strerror(-rc));
        goto out;
    }
    n = snprintf(ic, sizeof(ic), "%s=%s", c->name, c->peer_url);
    if (n < 0 || (size_t)n >= sizeof(ic)) {
        rc = act_fail(err, err_len, -ENAMETOOLONG, "name or peer URL too long");
        goto out;
    }
    {
        /* execve wants writable strings: own copies */
        char a_file[PATH_MAX], a_name[CONFIG_MAX_VALUE], a_peer[CONFIG_MAX_VALUE];
        if (snprintf(a_file, sizeof(a_file), "%s", file) >= (int)sizeof(a_file) ||
            snprintf(a_name, sizeof(a_name), "%s", c->name) >= (int)sizeof(a_name) ||
            snprintf(a_peer, sizeof(a_peer), "%s", c->peer_url) >= (int)sizeof(a_peer)) {
            rc = act_fail(err, err_len, -ENAMETOOLONG, "argument too long");
            goto out;
        }
        /* one-member cluster: only ourselves in --initial-cluster; the peers are added with
         * MemberAdd later (a full --initial-cluster would let empty peers started `new` join
         * with an empty keyspace, see etcd-facts.md) */
        char *argv[RESTORE_TOOL_ARGS + 1] = {tool,
                                             (char *)"snapshot",
                                             (char *)"restore",
                                             a_file,
                                             (char *)"--name",
                                             a_name,
                                             (char *)"--initial-cluster",
                                             ic,
                                             (char *)"--initial-cluster-token",
                                             r->token,
                                             (char *)"--initial-advertise-peer-urls",
                                             a_peer,
                                             (char *)"--data-dir",
                                             staging};
        char num[24];
        int argc = 14;
        bump_flags(c, tool, num, sizeof(num), argv, &argc, r);
        argv[argc] = NULL;
        log_msg(LOG_INFO,
                "restore: %s snapshot restore %s (%" PRIu64 " bytes, sha256 %.16s...) "
                "as a one-member cluster, token %s, into %s%s%s%s",
                r->tool, file, r->snap.size, r->snap.sha256, r->token, staging,
                r->bump == RESTORE_BUMP_APPLIED ? ", --bump-revision " : "",
                r->bump == RESTORE_BUMP_APPLIED ? num : "",
                r->bump == RESTORE_BUMP_APPLIED ? " --mark-compacted" : "");
        t0 = now_ms();
        rc = run_tool(argv, c->timeout_ms, err, err_len);
        r->restore_ms = now_ms() - t0;
        if (rc != 0)
            goto out;
    }
    /* the tool's output must be a valid data dir; its IDs go into the marker */
    rc = datadir_inspect(staging, &rep);
    if (rc != 0 || rep.verdict != DATADIR_VALID || !rep.ids_known) {
        rc = act_fail(err, err_len, -EIO, "restored data in %s does not check out: %s", staging,
                      rep.reason[0] ? rep.reason : "no member/cluster ID");
        goto out;
    }
    r->member_id = rep.member_id;
    r->cluster_id = rep.cluster_id;
    (void)chmod(staging, 0700); /* etcd insists on 0700 */
    rc = dirsync(dir);
    if (rc != 0) {
        act_fail(err, err_len, rc, "fsync %s: %s", dir, strerror(-rc));
        goto out;
    }
    act_crash_point("restore");

    /* 4. move the data dir aside (kept: it may hold writes newer than the snapshot) */
    r->failed_step = "move";
    rc = act_move_aside(c->data_dir, c->now, r->moved_to, sizeof(r->moved_to), err, err_len);
    if (rc == -ENOENT)
        rc = 0;
    if (rc != 0)
        goto out;
    act_crash_point("restore-move");

    /* 5. swap */
    r->failed_step = "swap";
    if (renameat2(AT_FDCWD, staging, AT_FDCWD, c->data_dir, RENAME_NOREPLACE) != 0) {
        rc = act_fail(err, err_len, -errno, "rename %s -> %s: %s", staging, c->data_dir,
                      strerror(errno));
        goto out;
    }
    rc = dirsync(dir);
    if (rc != 0) {
        act_fail(err, err_len, rc, "fsync %s: %s", dir, strerror(-rc));
        goto out;
    }
    act_crash_point("swap");

    /* 6. marker: from here on a rerun takes the normal table */
    r->failed_step = "marker";
    memset(&m, 0, sizeof(m));
    m.restorer = true;
    m.cluster_id = r->cluster_id;
    n = snprintf(m.source, sizeof(m.source), "%s", c->source);
    if (n < 0 || (size_t)n >= sizeof(m.source)) {
        rc = act_fail(err, err_len, -ENAMETOOLONG, "--restore-from too long");
        goto out;
    }
    memcpy(m.sha256, r->snap.sha256, sizeof(m.sha256));
    memcpy(m.token, r->token, sizeof(m.token));
    memcpy(m.object, r->object, sizeof(m.object));
    memcpy(m.object_sha256, r->object_sha256, sizeof(m.object_sha256));
    rc = restore_marker_write(c->data_dir, &m, err, err_len);
    if (rc != 0)
        goto out;
    act_crash_point("marker");

    /* 7. env, state */
    r->failed_step = "state";
    rc = write_state(c, err, err_len);
    if (rc != 0)
        goto out;
    r->failed_step = NULL;
out:
    if (file == download)
        (void)unlink(download);
    return rc;
}
