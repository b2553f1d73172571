/* store_file.c - the store interface (store.h) on a mounted directory (`file:///PATH`: NFS, a
 * second volume), with the S3 store's layout and rules.
 *
 * Guarantees: an object is written under a hidden temp name in its final directory
 * (".<name>.part-XXXXXX"), fsynced, renamed into place and its directory fsynced, so a reader
 * or a listing never sees a half-written object, and a committed one survives a crash. Names
 * starting with '.' are never listed nor accepted as object names; leftovers of a crashed
 * writer are what abort_stale removes. Files 0600, directories 0700 (backups are secrets). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirsync.h"
#include "errbuf.h"
#include "store.h"

#define FILE_TEMP_MARK ".part-"
#define FILE_MAX_DEPTH 32 /* directory levels walked by list / abort_stale */

struct file_store {
    struct store base;
    char root[PATH_MAX]; /* no trailing '/' */
};

struct file_upload {
    struct store_upload base;
    struct file_store *fs;
    int fd;
    char tmp[PATH_MAX], final[PATH_MAX];
};

static int file_open(const char *url, const struct store_options *o, struct store **out, char *err,
                     size_t err_len)
{
    const char *path = url + strlen("file://");
    struct file_store *fs;
    struct stat st;
    size_t n;

    (void)o;
    if (path[0] != '/')
        return errbuf_fail(err, err_len, -EINVAL, "file store URL must be file:///ABSOLUTE/PATH");
    if (strchr(path, '?') || strchr(path, '#') || strstr(path, "/../") || strstr(path, "/./"))
        return errbuf_fail(err, err_len, -EINVAL,
                           "file store path must be plain (no ?, #, . or ..)");
    if (stat(path, &st) != 0)
        return errbuf_fail(err, err_len, -errno, "file store %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return errbuf_fail(err, err_len, -ENOTDIR, "file store %s is not a directory", path);
    fs = calloc(1, sizeof(*fs));
    if (!fs)
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n >= sizeof(fs->root)) {
        free(fs);
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "file store path too long");
    }
    memcpy(fs->root, path, n);
    fs->root[n] = '\0';
    if (n == 1)
        fs->root[0] = '\0'; /* "/" itself: names join as "/name" */
    *out = &fs->base;
    return 0;
}

static void file_close(struct store *s)
{
    free(s);
}

static int join(const struct file_store *fs, const char *name, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s", fs->root, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* mkdir -p of path's parent directories (path itself is a file). */
static int make_parents(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            *p = '/';
            return -e;
        }
        *p = '/';
    }
    return 0;
}

static int fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return dirsync(dir);
}

static int file_upload_begin(struct store *s, const char *name, struct store_upload **out,
                             char *err, size_t err_len)
{
    struct file_store *fs = (struct file_store *)s;
    struct file_upload *u = calloc(1, sizeof(*u));
    const char *base;
    int rc, n;

    if (!u)
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    u->fs = fs;
    u->fd = -1;
    if (join(fs, name, u->final, sizeof(u->final)) != 0) {
        free(u);
        return errbuf_fail(err, err_len, -ENAMETOOLONG,
                           "object name too long for this file system");
    }
    base = strrchr(u->final, '/') + 1;
    n = snprintf(u->tmp, sizeof(u->tmp), "%.*s.%s" FILE_TEMP_MARK "XXXXXX", (int)(base - u->final),
                 u->final, base);
    if (n < 0 || (size_t)n >= sizeof(u->tmp)) {
        free(u);
        return errbuf_fail(err, err_len, -ENAMETOOLONG,
                           "object name too long for this file system");
    }
    rc = make_parents(u->tmp);
    if (rc == 0) {
        u->fd = mkstemp(u->tmp);
        if (u->fd < 0)
            rc = -errno;
    }
    if (rc != 0) {
        free(u);
        return errbuf_fail(err, err_len, rc, "create %s in %s: %s", name, fs->root, strerror(-rc));
    }
    (void)fchmod(u->fd, 0600);
    *out = &u->base;
    return 0;
}

/* Positional reads and writes only: parts may arrive at once from several threads. */
static int file_upload_part(struct store_upload *up, const struct store_part *p, char *err,
                            size_t err_len)
{
    struct file_upload *u = (struct file_upload *)up;
    uint64_t off = p->off, len = p->len;
    loff_t out = (loff_t)p->obj_off;
    char *buf = NULL;

    while (len > 0) {
        loff_t in = (loff_t)off;
        ssize_t n = copy_file_range(p->fd, &in, u->fd, &out, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
            break; /* not between these files: copy by hand */
        if (n < 0)
            return errbuf_fail(err, err_len, -errno, "copy into %s: %s", u->tmp, strerror(errno));
        if (n == 0)
            return errbuf_fail(err, err_len, -EIO, "source ended %llu bytes early",
                               (unsigned long long)len);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    if (len > 0 && !(buf = malloc(STORE_IO_CHUNK)))
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    while (len > 0) {
        size_t want = len < STORE_IO_CHUNK ? (size_t)len : STORE_IO_CHUNK, done = 0;
        ssize_t r = pread(p->fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int rc = r < 0 ? -errno : -EIO;
            free(buf);
            return errbuf_fail(err, err_len, rc, "read source: %s",
                               r < 0 ? strerror(-rc) : "short");
        }
        while (done < (size_t)r) {
            ssize_t w = pwrite(u->fd, buf + done, (size_t)r - done, (off_t)out);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                int rc = -errno;
                free(buf);
                return errbuf_fail(err, err_len, rc, "write %s: %s", u->tmp, strerror(-rc));
            }
            done += (size_t)w;
            out += w;
        }
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    free(buf);
    return 0;
}

static void file_upload_abort(struct store_upload *up)
{
    struct file_upload *u = (struct file_upload *)up;

    if (u->fd >= 0)
        close(u->fd);
    (void)unlink(u->tmp);
    free(u);
}

static int file_upload_commit(struct store_upload *up, char *err, size_t err_len)
{
    struct file_upload *u = (struct file_upload *)up;
    int rc = 0;

    if (fsync(u->fd) != 0)
        rc = errbuf_fail(err, err_len, -errno, "fsync %s: %s", u->tmp, strerror(errno));
    else if (close(u->fd) != 0)
        rc = errbuf_fail(err, err_len, -errno, "close %s: %s", u->tmp, strerror(errno));
    u->fd = -1;
    if (rc == 0 && rename(u->tmp, u->final) != 0)
        rc = errbuf_fail(err, err_len, -errno, "rename to %s: %s", u->final, strerror(errno));
    if (rc == 0 && (rc = fsync_parent(u->final)) != 0)
        errbuf_fail(err, err_len, rc, "fsync of %s's directory: %s", u->final, strerror(-rc));
    if (rc != 0) {
        file_upload_abort(up);
        return rc;
    }
    free(u);
    return 0;
}

static int file_get(struct store *s, const char *name, store_sink_fn sink, void *arg, char *err,
                    size_t err_len)
{
    struct file_store *fs = (struct file_store *)s;
    char path[PATH_MAX], *buf;
    int fd, rc = 0;

    if (join(fs, name, path, sizeof(path)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errbuf_fail(err, err_len, -errno, "%s: %s", path, strerror(errno));
    buf = malloc(STORE_IO_CHUNK);
    if (!buf) {
        close(fd);
        return errbuf_fail(err, err_len, -ENOMEM, "out of memory");
    }
    for (;;) {
        ssize_t r = read(fd, buf, STORE_IO_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = errbuf_fail(err, err_len, -errno, "read %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        rc = sink(arg, buf, (size_t)r);
        if (rc != 0) {
            if (err && err_len && !err[0])
                errbuf_fail(err, err_len, rc, "reading %s stopped: %s", name, strerror(-rc));
            break;
        }
    }
    free(buf);
    close(fd);
    return rc;
}

struct walk {
    const char *prefix;
    store_list_fn fn; /* list */
    void *arg;
    time_t before; /* abort_stale */
    unsigned aborted;
    bool stale;
    size_t root_len;
};

/* Walks dir (below the root; rel is its name relative to the root, "" or ending in '/').
 * Recursive, bounded by FILE_MAX_DEPTH. */
// NOLINTNEXTLINE(misc-no-recursion)
static int walk_dir(struct walk *w, const char *path, const char *rel, int depth)
{
    DIR *d;
    struct dirent *e;
    int rc = 0;

    if (depth > FILE_MAX_DEPTH)
        return 0;
    d = opendir(path);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    while (rc == 0 && (errno = 0, e = readdir(d))) {
        char child[PATH_MAX], crel[STORE_MAX_NAME + 2];
        struct stat st;
        size_t plen = strlen(w->prefix), clen;
        int n;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n = snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(child))
            continue;
        if (lstat(child, &st) != 0)
            continue; /* removed meanwhile */
        if (e->d_name[0] == '.') {
            /* a temp file of a writer, or not ours */
            if (w->stale && S_ISREG(st.st_mode) && strstr(e->d_name, FILE_TEMP_MARK) &&
                strncmp(rel, w->prefix, strlen(rel) < plen ? strlen(rel) : plen) == 0 &&
                st.st_mtime < w->before && unlink(child) == 0)
                w->aborted++;
            continue;
        }
        n = snprintf(crel, sizeof(crel), "%s%s%s", rel, e->d_name, S_ISDIR(st.st_mode) ? "/" : "");
        if (n < 0 || (size_t)n >= sizeof(crel))
            continue;
        clen = (size_t)n;
        if (S_ISDIR(st.st_mode)) {
            /* descend only where names can still match the prefix */
            if (strncmp(crel, w->prefix, clen < plen ? clen : plen) == 0)
                rc = walk_dir(w, child, crel, depth + 1);
        } else if (S_ISREG(st.st_mode) && !w->stale && strncmp(crel, w->prefix, plen) == 0) {
            struct store_entry ent = {.size = (uint64_t)st.st_size, .mtime = st.st_mtime};
            memcpy(ent.name, crel, clen + 1);
            rc = w->fn(w->arg, &ent);
        }
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    return rc;
}

static int file_list(struct store *s, const char *prefix, store_list_fn fn, void *arg, char *err,
                     size_t err_len)
{
    struct file_store *fs = (struct file_store *)s;
    struct walk w = {.prefix = prefix, .fn = fn, .arg = arg};
    int rc = walk_dir(&w, fs->root[0] ? fs->root : "/", "", 0);

    if (rc < 0)
        return errbuf_fail(err, err_len, rc, "listing %s: %s", fs->root, strerror(-rc));
    return rc;
}

static int file_remove(struct store *s, const char *name, char *err, size_t err_len)
{
    struct file_store *fs = (struct file_store *)s;
    char path[PATH_MAX];
    int rc;

    if (join(fs, name, path, sizeof(path)) != 0)
        return errbuf_fail(err, err_len, -ENAMETOOLONG, "object name too long");
    if (unlink(path) != 0)
        return errbuf_fail(err, err_len, -errno, "remove %s: %s", path, strerror(errno));
    rc = fsync_parent(path);
    return rc ? errbuf_fail(err, err_len, rc, "fsync of %s's directory: %s", path, strerror(-rc))
              : 0;
}

static int file_abort_stale(struct store *s, const char *prefix, time_t before, unsigned *aborted,
                            char *err, size_t err_len)
{
    struct file_store *fs = (struct file_store *)s;
    struct walk w = {.prefix = prefix, .before = before, .stale = true};
    int rc = walk_dir(&w, fs->root[0] ? fs->root : "/", "", 0);

    *aborted = w.aborted;
    return rc < 0 ? errbuf_fail(err, err_len, rc, "cleaning %s: %s", fs->root, strerror(-rc)) : 0;
}

const struct store_ops store_file_ops = {
    .scheme = "file",
    .open = file_open,
    .close = file_close,
    .upload_begin = file_upload_begin,
    .upload_part = file_upload_part,
    .upload_commit = file_upload_commit,
    .upload_abort = file_upload_abort,
    .get = file_get,
    .list = file_list,
    .remove = file_remove,
    .abort_stale = file_abort_stale,
};
