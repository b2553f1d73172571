/* restore_store.c - reset-member's download from a backup store (see restore_store.h): resolve
 * the newest complete backup or the named object, stream it into the download file with its
 * sha256, check it against its manifest. The snapshot checks (bbolt metas, sha256 trailer) are
 * restore.c's and run on what this writes. */
#include "restore_store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "act.h"
#include "age.h"
#include "clock.h"
#include "codec.h"
#include "log.h"
#include "store.h"

#define MANIFEST_SUFFIX ".manifest.json"

bool restore_store_is_url(const char *source)
{
    return store_is_url(source);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

int restore_store_parse_name(const char *name, char *when, uint64_t *rev, bool *zstd, bool *age)
{
    const char *base = strrchr(name, '/'), *cid, *p, *dot;
    uint64_t r = 0;

    if (!base || base - name < 16)
        return -EINVAL;
    cid = base - 16;
    if (cid != name && cid[-1] != '/')
        return -EINVAL;
    for (int i = 0; i < 16; i++)
        if (!((cid[i] >= '0' && cid[i] <= '9') || (cid[i] >= 'a' && cid[i] <= 'f')))
            return -EINVAL;
    base++;
    /* yyyymmddThhmmssZ-rev */
    if (strlen(base) < 16 + 4 + 1 + 3 || !all_digits(base, 8) || base[8] != 'T' ||
        !all_digits(base + 9, 6) || base[15] != 'Z' || strncmp(base + 16, "-rev", 4) != 0)
        return -EINVAL;
    p = base + 20;
    dot = strchr(p, '.');
    if (!dot || !all_digits(p, (size_t)(dot - p)) || dot - p > 19)
        return -EINVAL;
    for (; p < dot; p++)
        r = r * 10 + (uint64_t)(*p - '0');
    *zstd = *age = false;
    if (strcmp(dot, ".db") == 0) {
    } else if (strcmp(dot, ".db.zst") == 0) {
        *zstd = true;
    } else if (strcmp(dot, ".db.age") == 0) {
        *age = true;
    } else if (strcmp(dot, ".db.zst.age") == 0) {
        *zstd = *age = true;
    } else {
        return -EINVAL;
    }
    memcpy(when, base, 16);
    when[16] = '\0';
    *rev = r;
    return 0;
}

/* ---- resolving -------------------------------------------------------------------------- */

struct candidate {
    char *name;
    uint64_t size;
    char when[17];
    uint64_t rev;
};

struct scan {
    struct candidate *c;
    size_t n, cap;
    char **manifests;
    size_t nm, capm;
    bool overflow;
};

static int on_listed(void *arg, const struct store_entry *e)
{
    struct scan *s = arg;
    size_t len = strlen(e->name), sl = strlen(MANIFEST_SUFFIX);
    struct candidate c = {0};
    bool z, a;

    if (len > sl && strcmp(e->name + len - sl, MANIFEST_SUFFIX) == 0) {
        if (s->nm == s->capm) {
            size_t cap = s->capm ? s->capm * 2 : 64;
            char **m;
            if (cap > RESTORE_MAX_CANDIDATES) {
                s->overflow = true;
                return 0;
            }
            m = realloc(s->manifests, cap * sizeof(*m));
            if (!m)
                return -ENOMEM;
            s->manifests = m;
            s->capm = cap;
        }
        if (!(s->manifests[s->nm] = strdup(e->name)))
            return -ENOMEM;
        s->nm++;
        return 0;
    }
    if (restore_store_parse_name(e->name, c.when, &c.rev, &z, &a) != 0)
        return 0; /* not a backup of ours */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct candidate *n;
        if (cap > RESTORE_MAX_CANDIDATES) {
            s->overflow = true;
            return 0;
        }
        n = realloc(s->c, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        s->c = n;
        s->cap = cap;
    }
    c.size = e->size;
    if (!(c.name = strdup(e->name)))
        return -ENOMEM;
    s->c[s->n++] = c;
    return 0;
}

static int newest_first(const void *x, const void *y)
{
    const struct candidate *a = x, *b = y;
    int c = strcmp(b->when, a->when);
    if (c)
        return c;
    if (a->rev != b->rev)
        return a->rev < b->rev ? 1 : -1;
    return strcmp(b->name, a->name);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

struct membuf {
    char *p;
    size_t len, cap;
};

static int on_manifest_bytes(void *arg, const void *buf, size_t len)
{
    struct membuf *m = arg;
    if (m->len + len > m->cap)
        return -EFBIG;
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

struct manifest {
    bool present;
    uint64_t object_size;
    bool has_size;
    char object_sha256[65], db_sha256[65];
};

static bool hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Reads "<name>.manifest.json". 0 (m->present false if absent), or a negative errno. */
static int read_manifest(struct store *st, const char *name, struct manifest *m, char *err,
                         size_t err_len)
{
    char mname[STORE_MAX_NAME + 1];
    struct membuf b = {malloc(RESTORE_MAX_MANIFEST), 0, RESTORE_MAX_MANIFEST};
    cJSON *j = NULL, *f;
    int rc, n;

    memset(m, 0, sizeof(*m));
    n = snprintf(mname, sizeof(mname), "%s%s", name, MANIFEST_SUFFIX);
    if (n < 0 || (size_t)n >= sizeof(mname)) {
        free(b.p);
        return 0; /* no manifest can have that name */
    }
    if (!b.p)
        return act_fail(err, err_len, -ENOMEM, "out of memory");
    rc = store_get(st, mname, on_manifest_bytes, &b, err, err_len);
    if (rc == -ENOENT && !strstr(err, "NoSuchBucket")) {
        free(b.p);
        err[0] = '\0';
        return 0;
    }
    if (rc != 0) {
        free(b.p);
        return rc == -EFBIG ? act_fail(err, err_len, -EBADMSG, "%s larger than %u bytes", mname,
                                       RESTORE_MAX_MANIFEST)
                            : rc;
    }
    j = cJSON_ParseWithLength(b.p, b.len);
    free(b.p);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return act_fail(err, err_len, -EBADMSG, "%s is not a JSON object", mname);
    }
    m->present = true;
    f = cJSON_GetObjectItem(j, "object_size");
    if (cJSON_IsNumber(f) && f->valuedouble >= 0 && f->valuedouble < 1.8e19) {
        m->object_size = (uint64_t)f->valuedouble;
        m->has_size = true;
    }
    f = cJSON_GetObjectItem(j, "object_sha256");
    if (cJSON_IsString(f) && hex64(f->valuestring))
        memcpy(m->object_sha256, f->valuestring, 65);
    f = cJSON_GetObjectItem(j, "db_sha256");
    if (cJSON_IsString(f) && hex64(f->valuestring))
        memcpy(m->db_sha256, f->valuestring, 65);
    cJSON_Delete(j);
    return 0;
}

/* The newest complete backup in st. Returns 0 with name/size/manifest, or -ENOENT / errors. */
static int resolve_newest(struct store *st, const char *url, char *name, size_t name_len,
                          uint64_t *size, struct manifest *m, char *err, size_t err_len)
{
    struct scan s = {0};
    size_t i, reads = 0;
    int rc;

    rc = store_list(st, "", on_listed, &s, err, err_len);
    if (rc != 0)
        goto out;
    if (s.overflow)
        log_msg(LOG_WARN, "restore: more than %d objects under %s: only the first considered",
                RESTORE_MAX_CANDIDATES, url);
    if (s.n > 1)
        qsort(s.c, s.n, sizeof(*s.c), newest_first);
    if (s.nm > 1)
        qsort(s.manifests, s.nm, sizeof(*s.manifests), cmp_str);
    rc = -ENOENT;
    for (i = 0; i < s.n && reads < RESTORE_MAX_MANIFEST_READS; i++) {
        char mname[STORE_MAX_NAME + 1], *key = mname;
        int n = snprintf(mname, sizeof(mname), "%s%s", s.c[i].name, MANIFEST_SUFFIX);
        if (n < 0 || (size_t)n >= sizeof(mname) || s.nm == 0 ||
            !bsearch(&key, s.manifests, s.nm, sizeof(*s.manifests), cmp_str)) {
            log_msg(LOG_INFO, "restore: %s has no manifest: not a complete backup", s.c[i].name);
            continue;
        }
        reads++;
        rc = read_manifest(st, s.c[i].name, m, err, err_len);
        if (rc != 0)
            goto out;
        if (!m->present || !m->has_size || m->object_size != s.c[i].size) {
            log_msg(LOG_WARN,
                    "restore: %s: manifest size %" PRIu64 " != object size %" PRIu64
                    ": not a complete backup",
                    s.c[i].name, m->object_size, s.c[i].size);
            rc = -ENOENT;
            continue;
        }
        n = snprintf(name, name_len, "%s", s.c[i].name);
        if (n < 0 || (size_t)n >= name_len) {
            rc = -ENAMETOOLONG;
            goto out;
        }
        *size = s.c[i].size;
        rc = 0;
        break;
    }
    if (rc == -ENOENT)
        act_fail(err, err_len, -ENOENT,
                 "no complete backup under %s (%zu backup objects, %zu manifests)", url, s.n, s.nm);
out:
    for (i = 0; i < s.n; i++)
        free(s.c[i].name);
    for (i = 0; i < s.nm; i++)
        free(s.manifests[i]);
    free(s.c);
    free(s.manifests);
    return rc;
}

/* ---- downloading ------------------------------------------------------------------------ */

struct download {
    int fd;
    struct codec *codec; /* .zst/.age undone on the way (NULL: a plain object) */
    uint64_t bytes, plain, max;
    EVP_MD_CTX *sha;
    struct restore_lag_hash data; /* the plain bytes but their last 32 */
    int64_t t0, last_log;         /* clock_mono_ms */
    int write_errno;
};

int restore_lag_hash_update(struct restore_lag_hash *h, const uint8_t *buf, size_t len)
{
    const size_t keep = sizeof h->window;
    size_t total = h->window_len + len;
    if (total <= keep) {
        memcpy(h->window + h->window_len, buf, len);
        h->window_len = total;
        return 0;
    }
    /* total - keep bytes leave the window: the oldest of it first, then of buf */
    size_t out = total - keep;
    size_t from_window = out < h->window_len ? out : h->window_len;
    if (!EVP_DigestUpdate(h->md, h->window, from_window) ||
        !EVP_DigestUpdate(h->md, buf, out - from_window))
        return -EIO;
    size_t stay = h->window_len - from_window;
    memmove(h->window, h->window + from_window, stay);
    memcpy(h->window + stay, buf + (out - from_window), len - (out - from_window));
    h->window_len = keep;
    return 0;
}

/* Plain (decoded) bytes: hashed and into the download file. */
static int on_plain_bytes(void *arg, const uint8_t *buf, size_t len)
{
    struct download *d = arg;
    size_t off = 0;

    if (d->plain + len > d->max)
        return -EFBIG;
    if (restore_lag_hash_update(&d->data, buf, len) != 0)
        return -EIO;
    while (off < len) {
        ssize_t w = write(d->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            d->write_errno = errno;
            return -errno;
        }
        off += (size_t)w;
    }
    d->plain += len;
    return 0;
}

/* Object bytes: hashed, then decoded (codec chain: age, then zstd) or written as they are. */
static int on_object_bytes(void *arg, const void *buf, size_t len)
{
    struct download *d = arg;
    int64_t t;
    int rc;

    if (d->bytes + len > d->max)
        return -EFBIG;
    if (!EVP_DigestUpdate(d->sha, buf, len))
        return -EIO;
    rc = d->codec ? codec_write(d->codec, buf, len) : on_plain_bytes(d, buf, len);
    if (rc != 0)
        return rc;
    d->bytes += len;
    t = clock_mono_ms();
    if (t - d->last_log >= 5000) {
        d->last_log = t;
        log_msg(LOG_INFO, "restore: downloaded %" PRIu64 " MiB in %.0f s", d->bytes >> 20,
                (double)(t - d->t0) / 1e3);
    }
    return 0;
}

/* The decoding stages for a .zst / .age object (common/codec.h), before anything is
 * downloaded: an encrypted object needs the identity file. */
static int decode_stage(const struct restore_object *o, const char *identity_file,
                        struct download *d, char *err, size_t err_len)
{
    struct age_identity ids[AGE_MAX_IDENTITIES];
    struct codec_dec_opts opts = {.zstd = o->zstd};
    size_t n = 0;
    int rc;

    if (!o->zstd && !o->age)
        return 0;
    if (o->age) {
        if (!identity_file || !identity_file[0])
            return act_fail(err, err_len, -EINVAL,
                            "%s is age-encrypted: --restore-identity (ETCD_RESTORE_IDENTITY_FILE) "
                            "must name the identity file",
                            o->name);
        rc = age_identities_load(identity_file, ids, AGE_MAX_IDENTITIES, &n, err, err_len);
        if (rc != 0) {
            size_t l = strlen(err);
            char why[256];
            snprintf(why, sizeof(why), "%.*s", (int)l, err);
            return act_fail(err, err_len, rc, "identity file %s: %s", identity_file, why);
        }
        opts.identities = ids;
        opts.n_identities = n;
    }
    rc = codec_dec_new(&d->codec, &opts, on_plain_bytes, d);
    age_identity_wipe(ids, n);
    if (rc != 0)
        return act_fail(err, err_len, rc, "cannot set up the decoder: %s", strerror(-rc));
    return 0;
}

int restore_store_fetch(const char *source, const char *identity_file, const char *path,
                        uint64_t max_bytes, struct restore_object *o, char *err, size_t err_len)
{
    char store_url[STORE_MAX_URL], when[17];
    const char *slash = strrchr(source, '/');
    struct store *st = NULL;
    struct manifest m = {0};
    struct download d = {.fd = -1, .max = max_bytes};
    unsigned char md[32];
    uint64_t rev, listed_size = 0;
    int rc;

    const char *name = NULL; /* NULL: the newest complete backup */
    int w;

    memset(o, 0, sizeof(*o));
    err[0] = '\0';
    if (strncmp(source, "s3://", 5) == 0 && !strchr(source + 5, '/'))
        w = snprintf(store_url, sizeof(store_url), "%s/", source); /* the bucket's root */
    else if (slash && slash[1] == '\0')
        w = snprintf(store_url, sizeof(store_url), "%s", source);
    else if (slash) {
        name = slash + 1;
        w = snprintf(store_url, sizeof(store_url), "%.*s", (int)(name - source), source);
    } else
        return act_fail(err, err_len, -EINVAL, "bad store URL");
    if (w < 0 || (size_t)w >= sizeof(store_url) || (name && strlen(name) > STORE_MAX_NAME))
        return act_fail(err, err_len, -ENAMETOOLONG, "store URL too long");
    rc = store_open(store_url, NULL, &st, err, err_len);
    if (rc != 0)
        return rc;
    if (!name) {
        rc =
            resolve_newest(st, store_url, o->name, sizeof(o->name), &listed_size, &m, err, err_len);
        if (rc != 0)
            goto out;
        log_msg(LOG_INFO, "restore: newest complete backup under %s is %s (%" PRIu64 " bytes)",
                store_url, o->name, listed_size);
    } else {
        snprintf(o->name, sizeof(o->name), "%s", name);
        if (!store_name_valid(o->name, false)) {
            rc = act_fail(err, err_len, -EINVAL, "invalid object name %s", o->name);
            goto out;
        }
        rc = read_manifest(st, o->name, &m, err, err_len);
        if (rc != 0)
            goto out;
    }
    snprintf(o->url, sizeof(o->url), "%s%s", store_url, o->name);
    if (restore_store_parse_name(o->name, when, &rev, &o->zstd, &o->age) != 0) {
        size_t l = strlen(o->name);
        o->zstd = l > 4 && strcmp(o->name + l - 4, ".zst") == 0;
        o->age = l > 4 && strcmp(o->name + l - 4, ".age") == 0;
        if (o->age && l > 8 && strncmp(o->name + l - 8, ".zst", 4) == 0)
            o->zstd = true;
    }
    rc = decode_stage(o, identity_file, &d, err, err_len);
    if (rc != 0)
        goto out;
    o->has_manifest = m.present;
    memcpy(o->db_sha256, m.db_sha256, sizeof(o->db_sha256));
    d.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (d.fd < 0) {
        rc = act_fail(err, err_len, -errno, "create %s: %s", path, strerror(errno));
        goto out;
    }
    d.sha = EVP_MD_CTX_new();
    d.data.md = EVP_MD_CTX_new();
    if (!d.sha || !EVP_DigestInit_ex(d.sha, EVP_sha256(), NULL) || !d.data.md ||
        !EVP_DigestInit_ex(d.data.md, EVP_sha256(), NULL)) {
        rc = act_fail(err, err_len, -ENOMEM, "sha256 init failed");
        goto out;
    }
    d.t0 = d.last_log = clock_mono_ms();
    log_msg(LOG_INFO, "restore: downloading %s to %s", o->url, path);
    rc = store_get(st, o->name, on_object_bytes, &d, err, err_len);
    if (rc != 0 && d.codec && codec_error(d.codec)[0])
        rc = act_fail(err, err_len, rc == -EFBIG ? rc : -EBADMSG, "%s: cannot decode: %s", o->url,
                      codec_error(d.codec));
    if (rc == 0 && d.codec && (rc = codec_finish(d.codec, NULL)) != 0)
        rc = act_fail(err, err_len, -EBADMSG, "%s: cannot decode: %s", o->url,
                      codec_error(d.codec)[0] ? codec_error(d.codec) : strerror(-rc));
    if (rc == -EFBIG)
        rc = act_fail(err, err_len, -EFBIG, "%s is larger than %" PRIu64 " bytes", o->url,
                      max_bytes);
    if (rc != 0)
        goto out;
    if (fsync(d.fd) != 0) {
        rc = act_fail(err, err_len, -errno, "fsync %s: %s", path, strerror(errno));
        goto out;
    }
    EVP_DigestFinal_ex(d.sha, md, NULL);
    EVP_DigestFinal_ex(d.data.md, o->data_sha256, NULL);
    for (int i = 0; i < 32; i++)
        snprintf(o->object_sha256 + 2 * i, 3, "%02x", md[i]);
    o->size = d.bytes;
    if (m.present && m.has_size && m.object_size != d.bytes) {
        rc =
            act_fail(err, err_len, -EBADMSG,
                     "%s: %" PRIu64 " bytes, its manifest says %" PRIu64 " (truncated or replaced)",
                     o->url, d.bytes, m.object_size);
        goto out;
    }
    if (m.present && m.object_sha256[0] && strcmp(m.object_sha256, o->object_sha256) != 0) {
        rc = act_fail(err, err_len, -EBADMSG,
                      "%s: sha256 %.16s... differs from its manifest's %.16s... (tampered or "
                      "corrupt)",
                      o->url, o->object_sha256, m.object_sha256);
        goto out;
    }
    log_msg(LOG_INFO, "restore: downloaded %s: %" PRIu64 " bytes in %.1f s, sha256 %s%s", o->url,
            d.bytes, (double)(clock_mono_ms() - d.t0) / 1e3, o->object_sha256,
            m.present ? " (matches its manifest)" : " (no manifest)");
out:
    codec_free(d.codec);
    EVP_MD_CTX_free(d.sha);
    EVP_MD_CTX_free(d.data.md);
    if (d.fd >= 0) {
        close(d.fd);
        if (rc != 0)
            (void)unlink(path);
    }
    store_close(st);
    return rc;
}
