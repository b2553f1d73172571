/* divergent.c - the "<data-dir>.divergent" marker: strict parse, render, atomic write, read,
 * remove. The meaning is decide.c's; writing it at the right time is agent/maint.c's. */
#include "divergent.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dirsync.h"
#include "hex.h"
#include "readall.h"

#define DIVERGENT_KEYS 6

static const char *const keys[DIVERGENT_KEYS] = {"member_id", "cluster_id",    "revision",
                                                 "hash",      "majority_hash", "time"};

static int parse_id(const cJSON *v, uint64_t *out)
{
    const char *s = cJSON_GetStringValue(v);
    size_t n;
    uint64_t x = 0;

    if (!s)
        return -EINVAL;
    n = strlen(s);
    if (n == 0 || n > 16)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int d = hex_value(s[i]);
        if (d < 0 || (s[i] >= 'A' && s[i] <= 'F'))
            return -EINVAL; /* we write lower case */
        x = x << 4 | (uint64_t)d;
    }
    if (x == 0)
        return -EINVAL;
    *out = x;
    return 0;
}

static int parse_int(const cJSON *v, double lo, double hi, int64_t *out)
{
    double d;

    if (!cJSON_IsNumber(v))
        return -EINVAL;
    d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != (double)(int64_t)d)
        return -EINVAL;
    *out = (int64_t)d;
    return 0;
}

int divergent_parse(const char *buf, size_t len, struct divergent_marker *m)
{
    const char *end = NULL;
    cJSON *j, *e;
    bool seen[DIVERGENT_KEYS] = {false};
    int rc = 0;
    int64_t x;

    memset(m, 0, sizeof(*m));
    if (len == 0 || len > DIVERGENT_MAX_BYTES || memchr(buf, '\0', len))
        return -EINVAL;
    j = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!j)
        return -EINVAL;
    for (const char *p = end; p && p < buf + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
            rc = -EINVAL; /* trailing bytes */
    if (!cJSON_IsObject(j))
        rc = -EINVAL;
    for (e = rc == 0 ? j->child : NULL; e && rc == 0; e = e->next) {
        int k = -1;
        for (int i = 0; i < DIVERGENT_KEYS; i++)
            if (e->string && strcmp(e->string, keys[i]) == 0)
                k = i;
        if (k < 0 || seen[k]) {
            rc = -EINVAL; /* unknown or duplicate key: not written by us */
            break;
        }
        seen[k] = true;
        switch (k) {
        case 0:
            rc = parse_id(e, &m->member_id);
            break;
        case 1:
            rc = parse_id(e, &m->cluster_id);
            break;
        case 2:
            rc = parse_int(e, 1, (double)DIVERGENT_MAX_REVISION, &m->revision);
            break;
        case 3:
        case 4:
            rc = parse_int(e, 0, (double)UINT32_MAX, &x);
            if (rc == 0 && k == 3)
                m->hash = (uint32_t)x;
            else if (rc == 0)
                m->majority_hash = (uint32_t)x;
            break;
        default:
            rc = parse_int(e, 0, (double)DIVERGENT_MAX_REVISION, &m->time);
            break;
        }
    }
    for (int i = 0; rc == 0 && i < DIVERGENT_KEYS; i++)
        if (!seen[i])
            rc = -EINVAL;
    cJSON_Delete(j);
    if (rc != 0)
        memset(m, 0, sizeof(*m));
    return rc;
}

int divergent_render(const struct divergent_marker *m, char *out, size_t out_len)
{
    int n;

    if (m->member_id == 0 || m->cluster_id == 0 || m->revision < 1 ||
        m->revision > DIVERGENT_MAX_REVISION || m->time < 0 || m->time > DIVERGENT_MAX_REVISION)
        return -EINVAL;
    n = snprintf(out, out_len,
                 "{\"member_id\":\"%" PRIx64 "\",\"cluster_id\":\"%" PRIx64
                 "\",\"revision\":%" PRId64 ",\"hash\":%" PRIu32 ",\"majority_hash\":%" PRIu32
                 ",\"time\":%" PRId64 "}\n",
                 m->member_id, m->cluster_id, m->revision, m->hash, m->majority_hash, m->time);
    if (n < 0 || (size_t)n >= out_len || (size_t)n > DIVERGENT_MAX_BYTES)
        return -ENOSPC;
    return 0;
}

int divergent_path(const char *data_dir, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s%s", data_dir, DIVERGENT_SUFFIX);
    return n < 0 || (size_t)n >= out_len ? -ENAMETOOLONG : 0;
}

int divergent_read(const char *path, struct divergent_marker *m)
{
    char buf[DIVERGENT_MAX_BYTES + 1];
    size_t len = 0;
    int fd, rc;

    memset(m, 0, sizeof(*m));
    if (strlen(path) >= PATH_MAX)
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    rc = readall(fd, buf, sizeof(buf), &len);
    close(fd);
    if (rc == -EFBIG)
        return -EINVAL;
    return rc ? rc : divergent_parse(buf, len, m);
}

int divergent_write(const char *path, const struct divergent_marker *m)
{
    char tmp[PATH_MAX + 8], buf[DIVERGENT_MAX_BYTES + 1];
    size_t len, off = 0;
    int fd, rc, n;

    rc = divergent_render(m, buf, sizeof(buf));
    if (rc != 0)
        return rc;
    n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    len = strlen(buf);
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        (void)unlink(tmp);
        return rc;
    }
    return dirsync_parent(path);
}

int divergent_remove(const char *path)
{
    if (unlink(path) != 0)
        return errno == ENOENT ? 0 : -errno;
    return dirsync_parent(path);
}
