/* store.c - the generic half of the store interface (see store.h): open by scheme, name checks,
 * whole-file and small-buffer puts on top of the implementations' part uploads. Protocols and
 * disk layout are store_s3.c's and store_file.c's. */
#include "store.h"
#include "errbuf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const struct store_ops *const store_kinds[] = {&store_s3_ops, &store_file_ops,
                                                      &store_azure_ops};

static const struct store_ops *kind_of(const char *url)
{
    for (size_t i = 0; url && i < sizeof(store_kinds) / sizeof(store_kinds[0]); i++) {
        size_t n = strlen(store_kinds[i]->scheme);
        if (strncmp(url, store_kinds[i]->scheme, n) == 0 && strncmp(url + n, "://", 3) == 0)
            return store_kinds[i];
    }
    return NULL;
}

bool store_is_url(const char *url)
{
    return kind_of(url) != NULL;
}

int store_open(const char *url, const struct store_options *o, struct store **out, char *err,
               size_t err_len)
{
    const struct store_ops *k = kind_of(url);
    struct store_options def = {0};
    int rc;

    *out = NULL;
    if (!k)
        return errbuf_fail(err, err_len, -EINVAL,
                           "not a store URL (s3://BUCKET/PREFIX or file:///PATH)");
    if (strlen(url) >= STORE_MAX_URL)
        return errbuf_fail(err, err_len, -EINVAL, "store URL longer than %d bytes",
                           STORE_MAX_URL - 1);
    if (!o)
        o = &def;
    if (o->part_size && (o->part_size < STORE_PART_MIN || o->part_size > STORE_PART_MAX))
        return errbuf_fail(err, err_len, -EINVAL, "part size %llu outside [%llu, %llu]",
                           (unsigned long long)o->part_size, (unsigned long long)STORE_PART_MIN,
                           (unsigned long long)STORE_PART_MAX);
    rc = k->open(url, o, out, err, err_len);
    if (rc != 0)
        return rc;
    (*out)->ops = k;
    (*out)->part_size = o->part_size ? o->part_size : STORE_PART_DEFAULT;
    snprintf((*out)->url, sizeof((*out)->url), "%s", url);
    return 0;
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

bool store_name_valid(const char *name, bool is_prefix)
{
    size_t n = name ? strlen(name) : 0, i, comp = 0;

    if (!name || n > STORE_MAX_NAME || (n == 0 && !is_prefix) || name[0] == '/')
        return false;
    for (i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\0') {
            size_t len = i - comp;
            const char *p = name + comp;
            bool last = c == '\0';
            if (len == 0 && !(last && (is_prefix || n == 0)))
                return false; /* "a//b", "a/" for a name */
            if (len > 0 && p[0] == '.')
                return false; /* ".", "..", ".hidden": temp names are the file store's */
            comp = i + 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f || c == '\\')
            return false;
    }
    return true;
}

int store_upload_begin(struct store *s, const char *name, struct store_upload **out, char *err,
                       size_t err_len)
{
    int rc;

    *out = NULL;
    if (!store_name_valid(name, false))
        return errbuf_fail(err, err_len, -EINVAL, "invalid object name");
    rc = s->ops->upload_begin(s, name, out, err, err_len);
    if (rc == 0) {
        (*out)->store = s;
        atomic_init(&(*out)->highest, 0);
        atomic_init(&(*out)->stored, 0);
    }
    return rc;
}

int store_upload_part(struct store_upload *u, const struct store_part *p, char *err, size_t err_len)
{
    if (p->number < 1 || p->number > STORE_MAX_PARTS)
        return errbuf_fail(err, err_len, p->number ? -EFBIG : -EINVAL,
                           "part number %u outside [1, %d]", p->number, STORE_MAX_PARTS);
    int rc = u->store->ops->upload_part(u, p, err, err_len);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&u->stored, 1);
    unsigned high = atomic_load(&u->highest);
    while (p->number > high && !atomic_compare_exchange_weak(&u->highest, &high, p->number))
        ;
    return 0;
}

int store_upload_commit(struct store_upload *u, char *err, size_t err_len)
{
    unsigned stored = atomic_load(&u->stored), high = atomic_load(&u->highest);
    if (stored != high) {
        u->store->ops->upload_abort(u);
        return errbuf_fail(err, err_len, -EINVAL, "%u parts stored, but the highest is part %u",
                           stored, high);
    }
    return u->store->ops->upload_commit(u, err, err_len);
}

void store_upload_abort(struct store_upload *u)
{
    if (u)
        u->store->ops->upload_abort(u);
}

int store_put_file(struct store *s, const char *name, int fd, uint64_t off, uint64_t len, char *err,
                   size_t err_len)
{
    struct store_upload *u;
    uint64_t done = 0;
    int rc;

    if ((len + s->part_size - 1) / s->part_size > STORE_MAX_PARTS)
        return errbuf_fail(err, err_len, -EFBIG, "%llu bytes need more than %d parts of %llu",
                           (unsigned long long)len, STORE_MAX_PARTS,
                           (unsigned long long)s->part_size);
    rc = store_upload_begin(s, name, &u, err, err_len);
    if (rc != 0)
        return rc;
    for (unsigned k = 1; done < len; k++) {
        struct store_part p = {.number = k, .obj_off = done, .fd = fd, .off = off + done};
        p.len = len - done < s->part_size ? len - done : s->part_size;
        rc = store_upload_part(u, &p, err, err_len);
        if (rc != 0) {
            s->ops->upload_abort(u);
            return rc;
        }
        done += p.len;
    }
    return store_upload_commit(u, err, err_len);
}

int store_put_buffer(struct store *s, const char *name, const void *buf, size_t len, char *err,
                     size_t err_len)
{
    int fd, rc;
    size_t off = 0;

    if (len > STORE_PART_MAX)
        return errbuf_fail(err, err_len, -EFBIG, "buffer of %zu bytes is too large", len);
    fd = memfd_create("store-put", MFD_CLOEXEC);
    if (fd < 0)
        return errbuf_fail(err, err_len, -errno, "memfd_create: %s", strerror(errno));
    while (off < len) {
        ssize_t w = write(fd, (const char *)buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = errbuf_fail(err, err_len, -errno, "memfd write: %s", strerror(errno));
            close(fd);
            return rc;
        }
        off += (size_t)w;
    }
    rc = store_put_file(s, name, fd, 0, len, err, err_len);
    close(fd);
    return rc;
}

int store_get(struct store *s, const char *name, store_sink_fn sink, void *arg, char *err,
              size_t err_len)
{
    if (!store_name_valid(name, false))
        return errbuf_fail(err, err_len, -EINVAL, "invalid object name");
    return s->ops->get(s, name, sink, arg, err, err_len);
}

int store_list(struct store *s, const char *prefix, store_list_fn fn, void *arg, char *err,
               size_t err_len)
{
    if (!store_name_valid(prefix ? prefix : "", true))
        return errbuf_fail(err, err_len, -EINVAL, "invalid prefix");
    return s->ops->list(s, prefix ? prefix : "", fn, arg, err, err_len);
}

int store_remove(struct store *s, const char *name, char *err, size_t err_len)
{
    if (!store_name_valid(name, false))
        return errbuf_fail(err, err_len, -EINVAL, "invalid object name");
    return s->ops->remove(s, name, err, err_len);
}

int store_abort_stale(struct store *s, const char *prefix, time_t before, unsigned *aborted,
                      char *err, size_t err_len)
{
    *aborted = 0;
    if (!store_name_valid(prefix ? prefix : "", true))
        return errbuf_fail(err, err_len, -EINVAL, "invalid prefix");
    return s->ops->abort_stale(s, prefix ? prefix : "", before, aborted, err, err_len);
}
