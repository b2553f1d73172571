/* bench_datadir.c - times datadir_inspect on a big synthetic data dir: an 8 GiB sparse bbolt
 * db (valid metas) and ~500 MB of valid WAL in etcd-sized 64 MB segments, warm and after
 * evicting the files from the page cache. usage: bench_datadir [DIR] (default /tmp). */
#include "crc32c.h"
#include "datadir.h"
#include "etcd.pb-c.h"
#include "wal.pb-c.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define DB_BYTES (8ull << 30)
#define PAGE 4096u
#define WAL_TOTAL (500ull * 1000 * 1000)
#define WAL_SEGMENT 64000000ull /* etcd's SegmentSizeBytes */
#define NEED_FREE (WAL_TOTAL + (200ull << 20))
#define RUNS 3
#define BUF_CAP (1u << 20)

static char g_root[4096];

struct out {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t written;
    uint32_t crc;
};

static int flush_out(struct out *o)
{
    size_t off = 0;
    while (off < o->len) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n < 0)
            return -errno;
        off += (size_t)n;
    }
    o->written += o->len;
    o->len = 0;
    return 0;
}

static int put_record(struct out *o, int64_t type, const uint8_t *data, size_t n)
{
    Walpb__Record rec = WALPB__RECORD__INIT;
    uint8_t tmp[8192];
    rec.has_type = 1;
    rec.type = type;
    if (type != 4)
        o->crc = crc32c_update(o->crc, data, n);
    rec.has_crc = 1;
    rec.crc = o->crc;
    if (data) {
        rec.has_data = 1;
        rec.data.data = (uint8_t *)(uintptr_t)data;
        rec.data.len = n;
    }
    size_t sz = walpb__record__get_packed_size(&rec);
    if (sz + 16 > sizeof tmp)
        return -EMSGSIZE;
    if (o->len + sz + 16 > BUF_CAP) {
        int rc = flush_out(o);
        if (rc < 0)
            return rc;
    }
    walpb__record__pack(&rec, tmp);
    uint64_t pad = (8 - sz % 8) % 8;
    uint64_t lw = sz | (pad ? (0x80 | pad) << 56 : 0);
    for (int i = 0; i < 8; i++)
        o->buf[o->len++] = (uint8_t)(lw >> (8 * i));
    memcpy(o->buf + o->len, tmp, sz);
    memset(o->buf + o->len + sz, 0, pad);
    o->len += sz + pad;
    return 0;
}

static size_t varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int write_db(const char *path)
{
    uint8_t page[PAGE];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (ftruncate(fd, (off_t)DB_BYTES) < 0) {
        rc = -errno;
        goto out;
    }
    for (uint64_t pg = 0; pg < 2; pg++) {
        memset(page, 0, sizeof page);
        test_bbolt_meta(page, pg, PAGE, 100 + pg, DB_BYTES / PAGE);
        if (pwrite(fd, page, sizeof page, (off_t)(pg * PAGE)) != (ssize_t)sizeof page) {
            rc = -EIO;
            goto out;
        }
    }
out:
    close(fd);
    return rc;
}

/* Write WAL segments until WAL_TOTAL bytes of records; returns the number of files. */
static int write_wal(const char *wal_dir, size_t *files, uint64_t *records)
{
    struct out o = {.fd = -1};
    uint8_t entry[4096];
    uint64_t index = 1, total = 0;
    int rc = 0;
    o.buf = malloc(BUF_CAP);
    if (!o.buf)
        return -ENOMEM;
    *files = 0;
    *records = 0;
    while (total < WAL_TOTAL) {
        char path[4200];
        if (snprintf(path, sizeof path, "%s/%016zx-%016" PRIx64 ".wal", wal_dir, *files,
                     *files ? index : 0) >= (int)sizeof path) {
            rc = -ENAMETOOLONG;
            goto out;
        }
        o.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o.fd < 0) {
            rc = -errno;
            goto out;
        }
        o.written = 0;
        Etcdserverpb__Metadata md = ETCDSERVERPB__METADATA__INIT;
        uint8_t mb[32];
        md.nodeid = 0x1234567890abcdefull;
        md.clusterid = 0xfedcba0987654321ull;
        size_t mn = etcdserverpb__metadata__pack(&md, mb);
        if ((rc = put_record(&o, 4, NULL, 0)) < 0 || (rc = put_record(&o, 1, mb, mn)) < 0)
            goto out;
        *records += 2;
        /* wal.Create's snapshot record {index 0, term 0}: etcd starts from it (no .snap) */
        if (*files == 0) {
            static const uint8_t zero_snap[] = {0x08, 0x00, 0x10, 0x00};
            if ((rc = put_record(&o, 5, zero_snap, sizeof zero_snap)) < 0)
                goto out;
            (*records)++;
        }
        /* entries of 100..3000 bytes of payload, like a mix of Kubernetes objects */
        while (o.written + o.len < WAL_SEGMENT && total + o.written + o.len < WAL_TOTAL) {
            size_t dl = 100 + (size_t)(index * 7919 % 2900), n = 0;
            entry[n++] = 0x10;
            n += varint(entry + n, 5);
            entry[n++] = 0x18;
            n += varint(entry + n, index);
            entry[n++] = 0x22;
            n += varint(entry + n, dl);
            for (size_t i = 0; i < dl; i++)
                entry[n + i] = (uint8_t)(index + i * 31);
            n += dl;
            if ((rc = put_record(&o, 2, entry, n)) < 0)
                goto out;
            index++;
            (*records)++;
        }
        if ((rc = flush_out(&o)) < 0)
            goto out;
        total += o.written;
        /* preallocated tail, as etcd leaves it */
        if (o.written < WAL_SEGMENT && ftruncate(o.fd, (off_t)WAL_SEGMENT) < 0) {
            rc = -errno;
            goto out;
        }
        fsync(o.fd);
        close(o.fd);
        o.fd = -1;
        (*files)++;
    }
out:
    if (o.fd >= 0)
        close(o.fd);
    free(o.buf);
    return rc;
}

static int evict_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_F) {
        int fd = open(p, O_RDONLY);
        if (fd >= 0) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
    return 0;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int run(const char *label)
{
    struct datadir_report r;
    for (int i = 0; i < RUNS; i++) {
        double c0 = cpu_s();
        int rc = datadir_inspect(g_root, &r);
        double cpu = cpu_s() - c0;
        if (rc < 0 || r.verdict != DATADIR_VALID) {
            fprintf(stderr, "bench_datadir: unexpected verdict %d: %s\n", (int)r.verdict, r.reason);
            return -1;
        }
        printf("bench_datadir: %-6s run %d: datadir_inspect %.3f s wall, %.3f s CPU (%zu WAL "
               "files, %" PRIu64
               " records, %.1f MB of records, db %llu GiB sparse, %d valid metas)\n",
               label, i + 1, (double)r.took_us / 1e6, cpu, r.wal_files, r.wal_records,
               (double)r.wal_bytes / 1e6, (unsigned long long)(DB_BYTES >> 30), r.db_valid_metas);
        if (i == 0 && strcmp(label, "cold") == 0)
            break; /* only the first cold run is cold */
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char p[4200];
    int rc = 1;
    struct statvfs vfs;
    if (statvfs(base, &vfs) < 0 || (uint64_t)vfs.f_bavail * vfs.f_frsize < NEED_FREE) {
        fprintf(stderr, "bench_datadir: need %llu MB free in %s\n",
                (unsigned long long)(NEED_FREE >> 20), base);
        return 1;
    }
    if (snprintf(g_root, sizeof g_root, "%s/bench_datadir.XXXXXX", base) >= (int)sizeof g_root ||
        !mkdtemp(g_root)) {
        perror("bench_datadir: mkdtemp");
        return 1;
    }
    size_t files;
    uint64_t records;
    (void)snprintf(p, sizeof p, "%s/member", g_root);
    mkdir(p, 0700);
    (void)snprintf(p, sizeof p, "%s/member/snap", g_root);
    mkdir(p, 0700);
    (void)snprintf(p, sizeof p, "%s/member/snap/db", g_root);
    if (write_db(p) < 0)
        goto out;
    (void)snprintf(p, sizeof p, "%s/member/wal", g_root);
    mkdir(p, 0700);
    if (write_wal(p, &files, &records) < 0) {
        fprintf(stderr, "bench_datadir: writing the WAL failed\n");
        goto out;
    }
    if (run("warm") < 0)
        goto out;
    nftw(g_root, evict_cb, 16, FTW_PHYS);
    if (run("cold") < 0)
        goto out;
    rc = 0;
out:
    test_rm_tree(g_root);
    return rc;
}
