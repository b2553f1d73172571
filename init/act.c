/* act.c - performs reset-member's decision (decide.c) with the facts observe.c gathered.
 *
 * Order of a reset/readd: remove our old entry -> add ourselves -> move the data aside ->
 * env file -> state file -> prune old copies. A kill -9 after any step leaves facts from which
 * decide() picks the continuation: after remove, our data's ID is unlisted (reset: add);
 * after add, an unstarted entry holds our peer URL (reset onto it, no second add); after the
 * move, the data is empty and that entry unstarted (join). The live data dir is only renamed,
 * never deleted; only older moved-aside copies are, and only after the membership change. */
#include "act.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "dirsync.h"
#include "log.h"
#include "readall.h"

#define ACT_BACKUP_TAG ".reset-"
#define ACT_STAMP_LEN 16 /* yyyymmddThhmmssZ */

#ifdef RESET_MEMBER_TEST_HOOKS
void act_crash_point(const char *step)
{
    const char *at = getenv(ACT_CRASH_ENV);

    if (at && strcmp(at, step) == 0) {
        log_msg(LOG_WARN, "crash point %s: killing myself (test hook)", step);
        raise(SIGKILL);
    }
}
#else
void act_crash_point(const char *step)
{
    (void)step; /* release build: the environment cannot make reset-member kill itself */
}
#endif

int act_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return rc;
}

int act_read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    struct stat st;
    int fd, rc = 0;

    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    rc = readall(fd, buf, cap, len);
out:
    close(fd);
    return rc;
}

int act_parent_of(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    int n;

    if (!slash)
        n = snprintf(buf, len, ".");
    else if (slash == path)
        n = snprintf(buf, len, "/");
    else
        n = snprintf(buf, len, "%.*s", (int)(slash - path), path);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int act_write_atomic(const char *path, const char *data, size_t len, char *err, size_t err_len)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    int fd = -1, rc = 0, n;
    size_t off = 0;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp) || act_parent_of(path, dir, sizeof(dir)) != 0)
        return act_fail(err, err_len, -ENAMETOOLONG, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        act_fail(err, err_len, rc, "create %s: %s", tmp, strerror(-rc));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            act_fail(err, err_len, rc, "write %s: %s", tmp, strerror(-rc));
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        act_fail(err, err_len, rc, "fsync %s: %s", tmp, strerror(-rc));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        act_fail(err, err_len, rc, "rename %s -> %s: %s", tmp, path, strerror(-rc));
        goto out;
    }
    rc = dirsync(dir);
    if (rc != 0)
        act_fail(err, err_len, rc, "fsync %s: %s", dir, strerror(-rc));
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        (void)unlink(tmp);
    return rc;
}

int act_move_aside(const char *data_dir, time_t now, char *out, size_t out_len, char *err,
                   size_t err_len)
{
    char stamp[ACT_STAMP_LEN + 1], dir[PATH_MAX], path[PATH_MAX];
    struct tm tm;
    struct stat st;
    int rc, n;

    if (lstat(data_dir, &st) != 0)
        return act_fail(err, err_len, -errno, "%s: %s", data_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return act_fail(err, err_len, -ENOTDIR, "%s is not a directory", data_dir);
    if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
        return act_fail(err, err_len, -EINVAL, "cannot format time %lld", (long long)now);
    if (act_parent_of(data_dir, dir, sizeof(dir)) != 0)
        return act_fail(err, err_len, -ENAMETOOLONG, "%s: path too long", data_dir);
    for (int i = 0; i < ACT_MAX_SUFFIX; i++) {
        if (i == 0)
            n = snprintf(path, sizeof(path), "%s%s%s", data_dir, ACT_BACKUP_TAG, stamp);
        else
            n = snprintf(path, sizeof(path), "%s%s%s-%d", data_dir, ACT_BACKUP_TAG, stamp, i);
        if (n < 0 || (size_t)n >= sizeof(path))
            return act_fail(err, err_len, -ENAMETOOLONG, "%s: path too long", data_dir);
        /* RENAME_NOREPLACE: never overwrite an older copy, even racing another run */
        if (renameat2(AT_FDCWD, data_dir, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
            goto moved;
        if (errno != EEXIST)
            return act_fail(err, err_len, -errno, "rename %s -> %s: %s", data_dir, path,
                            strerror(errno));
    }
    return act_fail(err, err_len, -EEXIST, "%s: too many moved-aside copies this second", data_dir);
moved:
    rc = dirsync(dir);
    if (rc != 0)
        return act_fail(err, err_len, rc, "fsync %s: %s", dir, strerror(-rc));
    n = snprintf(out, out_len, "%s", path);
    if (n < 0 || (size_t)n >= out_len)
        return act_fail(err, err_len, -ENAMETOOLONG, "moved to a path too long to report");
    return 0;
}

/* "<base>.reset-yyyymmddThhmmssZ" with an optional "-N" suffix: one of our copies? */
static bool is_backup_name(const char *name, const char *base)
{
    size_t bl = strlen(base), tl = strlen(ACT_BACKUP_TAG);
    const char *p;

    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ACT_BACKUP_TAG, tl) != 0)
        return false;
    p = name + bl + tl;
    for (int i = 0; i < ACT_STAMP_LEN; i++) {
        char ch = p[i];
        bool ok = i == 8 ? ch == 'T' : i == 15 ? ch == 'Z' : (ch >= '0' && ch <= '9');
        if (!ok)
            return false;
    }
    p += ACT_STAMP_LEN;
    if (*p == '\0')
        return true;
    if (*p++ != '-' || *p == '\0')
        return false;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

/* Oldest first: by timestamp, then by numeric suffix (none = 0). */
static int backup_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    const char *tx = strstr(x, ACT_BACKUP_TAG), *ty = strstr(y, ACT_BACKUP_TAG);
    int c = strncmp(tx, ty, strlen(ACT_BACKUP_TAG) + ACT_STAMP_LEN);
    const char *sx = tx + strlen(ACT_BACKUP_TAG) + ACT_STAMP_LEN;
    const char *sy = ty + strlen(ACT_BACKUP_TAG) + ACT_STAMP_LEN;
    unsigned long nx = *sx ? strtoul(sx + 1, NULL, 10) : 0;
    unsigned long ny = *sy ? strtoul(sy + 1, NULL, 10) : 0;

    if (c != 0)
        return c;
    return nx < ny ? -1 : nx > ny;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 ? -1 : 0;
}

int act_prune_backups(const char *data_dir, uint64_t keep, size_t *pruned, char *err,
                      size_t err_len)
{
    char dir[PATH_MAX], path[PATH_MAX];
    const char *base;
    char *names[ACT_MAX_BACKUP_SCAN];
    size_t n = 0;
    DIR *d = NULL;
    struct dirent *e;
    int rc = 0;

    *pruned = 0;
    base = strrchr(data_dir, '/');
    base = base ? base + 1 : data_dir;
    if (*base == '\0' || act_parent_of(data_dir, dir, sizeof(dir)) != 0)
        return act_fail(err, err_len, -EINVAL, "%s: no base name", data_dir);
    d = opendir(dir);
    if (!d)
        return act_fail(err, err_len, -errno, "opendir %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (!is_backup_name(e->d_name, base))
            continue;
        if (n == ACT_MAX_BACKUP_SCAN) {
            rc = act_fail(err, err_len, -E2BIG, "more than %d moved-aside copies in %s",
                          ACT_MAX_BACKUP_SCAN, dir);
            goto out;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            rc = act_fail(err, err_len, -ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (n <= keep)
        goto out;
    qsort(names, n, sizeof(names[0]), backup_cmp);
    for (size_t i = 0; i < n - keep; i++) {
        int k = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (k < 0 || (size_t)k >= sizeof(path)) {
            rc = act_fail(err, err_len, -ENAMETOOLONG, "%s: path too long", names[i]);
            goto out;
        }
        if (nftw(path, rm_entry, ACT_NFTW_FDS, FTW_DEPTH | FTW_PHYS) != 0) {
            rc = act_fail(err, err_len, -errno, "delete %s: %s", path, strerror(errno));
            goto out;
        }
        (*pruned)++;
    }
    rc = dirsync(dir);
    if (rc != 0)
        act_fail(err, err_len, rc, "fsync %s: %s", dir, strerror(-rc));
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    closedir(d);
    return rc;
}

static bool member_has_url(const struct etcd_member *m, const char *url)
{
    for (size_t i = 0; i < m->n_peer_urls; i++)
        if (strcmp(m->peer_urls[i], url) == 0)
            return true;
    return false;
}

int act_initial_cluster(const struct etcd_member_list *l, const char *self_name,
                        const char *self_peer_url, char *out, size_t out_len)
{
    size_t off = 0;
    bool self_seen = false;
    int n;

    out[0] = '\0';
    for (size_t i = 0; l && i < l->n_members; i++) {
        const struct etcd_member *m = &l->members[i];
        bool self = member_has_url(m, self_peer_url);
        char hex[17];
        const char *name = self ? self_name : (m->name && m->name[0] ? m->name : NULL);

        if (!name)
            name = etcd_id_hex(m->id, hex);
        self_seen = self_seen || self;
        for (size_t j = 0; j < m->n_peer_urls; j++) {
            n = snprintf(out + off, out_len - off, "%s%s=%s", off ? "," : "", name,
                         m->peer_urls[j]);
            if (n < 0 || (size_t)n >= out_len - off)
                return -ENOSPC;
            off += (size_t)n;
        }
    }
    if (!self_seen) {
        n = snprintf(out + off, out_len - off, "%s%s=%s", off ? "," : "", self_name, self_peer_url);
        if (n < 0 || (size_t)n >= out_len - off)
            return -ENOSPC;
    }
    return 0;
}

static int retry_delay(int attempt)
{
    int ms = ACT_RETRY_DELAY_MS;
    for (int i = 1; i < attempt && ms < ACT_RETRY_DELAY_MAX_MS; i++)
        ms *= 2;
    return ms < ACT_RETRY_DELAY_MAX_MS ? ms : ACT_RETRY_DELAY_MAX_MS;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const struct etcd_member *find_by_url(const struct etcd_member_list *l, const char *url)
{
    for (size_t i = 0; i < l->n_members; i++)
        if (member_has_url(&l->members[i], url))
            return &l->members[i];
    return NULL;
}

static bool listed(const struct etcd_member_list *l, uint64_t id)
{
    for (size_t i = 0; i < l->n_members; i++)
        if (l->members[i].id == id)
            return true;
    return false;
}

/* Remove id. A call that failed may still have taken effect: check the list before trying
 * again. "member not found" means done. */
static int do_remove(const struct act_config *c, struct grpc_channel *ch, uint64_t id, char *err,
                     size_t err_len)
{
    struct grpc_status st;
    char hex[17];

    for (int a = 0; a < ACT_MEMBER_ATTEMPTS; a++) {
        struct etcd_member_list l;
        if (a > 0) {
            sleep_ms(retry_delay(a));
            if (etcd_member_list(ch, c->call_timeout_ms, &l, &st) == GRPC_OK) {
                bool gone = !listed(&l, id);
                etcd_member_list_free(&l);
                if (gone)
                    return 0;
            }
        }
        if (etcd_member_remove(ch, id, c->call_timeout_ms, NULL, &st) == GRPC_OK ||
            st.code == GRPC_NOT_FOUND)
            return 0;
        log_msg(LOG_WARN, "MemberRemove %s attempt %d: %s %s", etcd_id_hex(id, hex), a + 1,
                grpc_code_name(st.code), st.message);
    }
    return act_fail(err, err_len, -EIO, "MemberRemove %s failed %d times: %s %s",
                    etcd_id_hex(id, hex), ACT_MEMBER_ATTEMPTS, grpc_code_name(st.code), st.message);
}

/* Add ourselves; on a failed try, an entry with our peer URL that appeared meanwhile is the
 * one we added. Fills *id and *after (members after the change; caller frees). */
static int do_add(const struct act_config *c, const struct decide_decision *d,
                  struct grpc_channel *ch, uint64_t *id, struct etcd_member_list *after, char *err,
                  size_t err_len)
{
    const char *urls[1] = {c->peer_url};
    struct grpc_status st;

    memset(after, 0, sizeof(*after));
    for (int a = 0; a < ACT_MEMBER_ATTEMPTS; a++) {
        struct etcd_member added;
        if (a > 0) {
            sleep_ms(retry_delay(a));
            if (etcd_member_list(ch, c->call_timeout_ms, after, &st) == GRPC_OK) {
                const struct etcd_member *m = find_by_url(after, c->peer_url);
                if (m) {
                    *id = m->id;
                    return 0;
                }
                etcd_member_list_free(after);
            }
        }
        if (etcd_member_add(ch, urls, 1, d->add_learner, c->call_timeout_ms, &added, after, &st) ==
            GRPC_OK) {
            *id = added.id;
            etcd_member_free(&added);
            return 0;
        }
        log_msg(LOG_WARN, "MemberAdd %s attempt %d: %s %s", c->peer_url, a + 1,
                grpc_code_name(st.code), st.message);
    }
    return act_fail(err, err_len, -EIO, "MemberAdd %s failed %d times: %s %s", c->peer_url,
                    ACT_MEMBER_ATTEMPTS, grpc_code_name(st.code), st.message);
}

static int write_state_files(const struct act_config *c, const struct decide_decision *d,
                             const struct etcd_member_list *members, char *err, size_t err_len)
{
    char ic[ACT_MAX_INITIAL_CLUSTER], buf[ACT_MAX_FILE];
    const char *state = decide_state_name(d->state);
    int n, rc;

    if (c->env_file && c->env_file[0]) {
        if (d->state == DECIDE_STATE_NEW || !members) {
            n = snprintf(ic, sizeof(ic), "%s", c->initial_cluster ? c->initial_cluster : "");
            if (n < 0 || (size_t)n >= sizeof(ic))
                return act_fail(err, err_len, -ENOSPC, "initial cluster too long");
        } else if (act_initial_cluster(members, c->name, c->peer_url, ic, sizeof(ic)) != 0) {
            return act_fail(err, err_len, -ENOSPC, "initial cluster too long");
        }
        /* an empty ETCD_INITIAL_CLUSTER= would override etcd's own default: leave it out */
        n = snprintf(buf, sizeof(buf), "ETCD_INITIAL_CLUSTER_STATE=%s\n%s%s%s", state,
                     ic[0] ? "ETCD_INITIAL_CLUSTER=" : "", ic, ic[0] ? "\n" : "");
        if (n < 0 || (size_t)n >= sizeof(buf))
            return act_fail(err, err_len, -ENOSPC, "env file too long");
        rc = act_write_atomic(c->env_file, buf, (size_t)n, err, err_len);
        if (rc != 0)
            return rc;
        act_crash_point("env");
    }
    n = snprintf(buf, sizeof(buf), "%s\n", state);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return act_fail(err, err_len, -ENOSPC, "state too long");
    rc = act_write_atomic(c->state_file, buf, (size_t)n, err, err_len);
    if (rc != 0)
        return rc;
    act_crash_point("state");
    return 0;
}

int act_run(const struct act_config *c, const struct decide_decision *d, struct grpc_channel *ch,
            const struct etcd_member_list *members, struct act_result *r, char *err, size_t err_len)
{
    struct etcd_member_list after = {0};
    const struct etcd_member_list *final = members;
    bool membership_done = false;
    int rc = 0;

    memset(r, 0, sizeof(*r));
    r->member_id = d->member_id;
    switch (d->action) {
    case DECIDE_BOOTSTRAP:
    case DECIDE_KEEP:
        break;
    case DECIDE_JOIN:
        membership_done = true;
        break;
    case DECIDE_READD:
    case DECIDE_RESET:
        if ((d->remove || d->add_self) && !ch)
            return act_fail(err, err_len, -EINVAL, "membership change without a connection");
        if (d->remove) {
            r->failed_step = "remove";
            rc = do_remove(c, ch, d->remove_id, err, err_len);
            if (rc != 0)
                goto out;
            act_crash_point("remove");
        }
        if (d->add_self) {
            r->failed_step = "add";
            rc = do_add(c, d, ch, &r->member_id, &after, err, err_len);
            if (rc != 0)
                goto out;
            final = &after;
            act_crash_point("add");
        }
        membership_done = true;
        if (d->move_aside) {
            r->failed_step = "move";
            rc =
                act_move_aside(c->data_dir, c->now, r->moved_to, sizeof(r->moved_to), err, err_len);
            if (rc == -ENOENT)
                rc = 0; /* nothing to move (already gone): empty data is what we want */
            if (rc != 0)
                goto out;
            act_crash_point("move");
        }
        break;
    case DECIDE_REFUSE:
    case DECIDE_RESTORE:
    default:
        return act_fail(err, err_len, -EINVAL, "action %s is not carried out here",
                        decide_action_name(d->action));
    }
    r->failed_step = "state";
    rc = write_state_files(c, d, final, err, err_len);
    if (rc != 0)
        goto out;
    if (membership_done) {
        /* only now is the moved-aside copy no longer the newest thing we might need */
        char perr[256];
        size_t pruned = 0;
        r->failed_step = "prune";
        if (act_prune_backups(c->data_dir, c->keep_backups, &pruned, perr, sizeof(perr)) != 0)
            log_msg(LOG_WARN, "pruning moved-aside copies: %s", perr); /* not fatal */
        r->pruned = pruned;
        act_crash_point("prune");
    }
    r->failed_step = NULL;
out:
    etcd_member_list_free(&after);
    return rc;
}
