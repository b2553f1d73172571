/* datadir.c - read-only verdict on an etcd 3.4 data dir: WAL framing and CRC chain, metadata
 * (member and cluster ID), bbolt meta pages, .snap CRCs, and the WAL lock test.
 * Record payloads are decoded with protobuf-c (wal.proto, etcd.proto); the CRC itself is in
 * crc32c.c. What to do with the verdict is init/'s business. */
#include "datadir.h"

#include "crc32c.h"
#include "etcd.pb-c.h"
#include "bounds.h"
#include "wal.pb-c.h"
#include "pbwire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"

/* Format facts of etcd 3.4 (wal/decoder.go, wal/wal.go) and bbolt 1.3.6, not tunables. */
#define WAL_FRAME_BYTES 8
#define WAL_SECTOR_BYTES 512                      /* minSectorSize, for isTornEntry */
#define WAL_MAX_ENTRY_BYTES (10ull * 1024 * 1024) /* maxWALEntrySizeLimit */
#define WAL_LEN_MASK 0x00ffffffffffffffull
#define WAL_NAME_HEX 16
#define WAL_TYPE_METADATA 1
#define WAL_TYPE_ENTRY 2
#define WAL_TYPE_STATE 3
#define WAL_TYPE_CRC 4
#define WAL_TYPE_SNAPSHOT 5

#define BBOLT_MAGIC 0xED0CDAEDu
#define BBOLT_VERSION 2u
#define BBOLT_META_OFF 16 /* after the page header */
#define BBOLT_META_LEN 80 /* page header + meta through the checksum */
#define BBOLT_SUM_LEN 56  /* checksum covers meta bytes [16, 72) */
#define BBOLT_PAGE_MIN 512u
#define BBOLT_PAGE_MAX (1u << 20)
#define BBOLT_NO_FREELIST UINT64_MAX /* pgidNoFreelist */
#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME 0x100000001b3ull

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t datadir_crc32c(uint32_t crc, const uint8_t *buf, size_t len)
{
    return crc32c_update(crc, buf, len);
}

/* ---- bbolt ---------------------------------------------------------------------------------- */

int datadir_bbolt_meta(const uint8_t *buf, size_t len, struct bbolt_meta *meta)
{
    memset(meta, 0, sizeof *meta);
    if (len < BBOLT_META_LEN)
        return -EMSGSIZE;
    const uint8_t *m = buf + BBOLT_META_OFF;
    meta->magic = le32(m);
    meta->version = le32(m + 4);
    meta->page_size = le32(m + 8);
    meta->flags = le32(m + 12);
    meta->root_pgid = le64(m + 16);
    /* m + 24: root bucket sequence */
    meta->freelist_pgid = le64(m + 32);
    meta->high_water_pgid = le64(m + 40);
    meta->txid = le64(m + 48);
    meta->checksum = le64(m + 56);

    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < BBOLT_SUM_LEN; i++) {
        h ^= m[i];
        h *= FNV64_PRIME;
    }
    /* bbolt 1.3.6 meta.validate(): a zero checksum is accepted (never written by bbolt, but
     * bbolt would open it, so calling it invalid would contradict etcd). */
    meta->valid = meta->magic == BBOLT_MAGIC && meta->version == BBOLT_VERSION &&
                  (meta->checksum == 0 || meta->checksum == h);
    return meta->valid ? 0 : -EINVAL;
}

static bool bbolt_page_size_ok(uint32_t ps)
{
    return ps >= BBOLT_PAGE_MIN && ps <= BBOLT_PAGE_MAX && (ps & (ps - 1)) == 0;
}

/* ---- protobuf wire walker (raftpb.Entry / raftpb.HardState, not in our protos) -------------- */

/* One field of a message, checked the way gogo's generated Unmarshal accepts it: a
 * well-formed tag, a length inside the buffer. Groups are refused (etcd never writes them).
 * Varints land in v, length-delimited fields in sub and sublen. */
struct pb_field {
    uint32_t num;
    unsigned wt;
    uint64_t v;
    const uint8_t *sub;
    size_t sublen;
};

static int pb_next(const uint8_t *p, size_t n, size_t *off, struct pb_field *f)
{
    uint64_t tag;
    if (pb_varint(p, n, off, &tag) < 0)
        return -EBADMSG;
    if ((tag >> 3) == 0 || (tag >> 3) > INT32_MAX)
        return -EBADMSG;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (unsigned)(tag & 7);
    switch (f->wt) {
    case PB_VARINT:
        return pb_varint(p, n, off, &f->v);
    case PB_FIXED64:
        if (n - *off < 8)
            return -EBADMSG;
        *off += 8;
        return 0;
    case PB_FIXED32:
        if (n - *off < 4)
            return -EBADMSG;
        *off += 4;
        return 0;
    case PB_LEN:
        if (pb_varint(p, n, off, &f->v) < 0 || f->v > n - *off)
            return -EBADMSG;
        f->sub = p + *off;
        f->sublen = (size_t)f->v;
        *off += (size_t)f->v;
        return 0;
    default:
        return -EBADMSG;
    }
}

/* Walk a whole message: fields in varint_mask must be varints, fields in bytes_mask
 * length-delimited (gogo: "wrong wireType"). The last value of varint field i < PB_VALS goes
 * to vals[i] when vals is given. */
#define PB_VALS 8
static int pb_walk(const uint8_t *p, size_t n, uint32_t varint_mask, uint32_t bytes_mask,
                   uint64_t *vals)
{
    size_t off = 0;
    struct pb_field f;
    while (off < n) {
        if (pb_next(p, n, &off, &f) < 0)
            return -EBADMSG;
        uint32_t bit = f.num < 32 ? 1u << f.num : 0;
        if (((varint_mask & bit) && f.wt != PB_VARINT) || ((bytes_mask & bit) && f.wt != PB_LEN))
            return -EBADMSG;
        if (vals && f.wt == PB_VARINT && f.num < PB_VALS)
            vals[f.num] = f.v;
    }
    return 0;
}

/* ---- WAL ------------------------------------------------------------------------------------ */

/* etcd's isTornEntry: the record's bytes (data+padding, at file offset off) split on 512-byte
 * sector boundaries; a torn write leaves at least one sector chunk all zero. */
static bool wal_torn(const uint8_t *buf, size_t off, size_t n)
{
    size_t cur = 0;
    while (cur < n) {
        size_t chunk = WAL_SECTOR_BYTES - (off + cur) % WAL_SECTOR_BYTES;
        if (chunk > n - cur)
            chunk = n - cur;
        bool zero = true;
        for (size_t i = 0; i < chunk && zero; i++)
            zero = buf[off + cur + i] == 0;
        if (zero)
            return true;
        cur += chunk;
    }
    return false;
}

static int scan_fail(struct wal_scan *scan, size_t off, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int scan_fail(struct wal_scan *scan, size_t off, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Truncation of a reason is harmless: it is a message for people. */
    (void)vsnprintf(scan->reason, sizeof scan->reason, fmt, ap);
    va_end(ap);
    scan->end_offset = off;
    return rc;
}

/* Check one decoded, CRC-verified record's payload. */
static int wal_payload(int64_t type, const uint8_t *d, size_t n, size_t off, struct wal_scan *scan)
{
    uint64_t vals[PB_VALS] = {0};
    switch (type) {
    case WAL_TYPE_METADATA: {
        Etcdserverpb__Metadata *md = etcdserverpb__metadata__unpack(NULL, n, d);
        if (!md)
            return scan_fail(scan, off, -EBADMSG, "undecodable metadata record at offset %zu", off);
        uint64_t mid = md->nodeid, cid = md->clusterid;
        etcdserverpb__metadata__free_unpacked(md, NULL);
        uint32_t mcrc = crc32c_update(0, d, n);
        if (!scan->have_ids) {
            scan->have_ids = true;
            scan->member_id = mid;
            scan->cluster_id = cid;
            scan->meta_crc = mcrc;
            scan->meta_len = n;
        } else if (mid != scan->member_id || cid != scan->cluster_id || mcrc != scan->meta_crc ||
                   n != scan->meta_len) {
            return scan_fail(scan, off, -EBADMSG,
                             "metadata record at offset %zu (member %" PRIx64 " cluster %" PRIx64
                             ") conflicts with member %" PRIx64 " cluster %" PRIx64,
                             off, mid, cid, scan->member_id, scan->cluster_id);
        }
        return 0;
    }
    case WAL_TYPE_ENTRY:
        /* raftpb.Entry {Type 1 enum, Term 2, Index 3, Data 4 bytes}; etcd panics on a bad one */
        if (pb_walk(d, n, 1u << 1 | 1u << 2 | 1u << 3, 1u << 4, vals) < 0)
            return scan_fail(scan, off, -EBADMSG, "undecodable raft entry at offset %zu", off);
        if (vals[3] > scan->last_index)
            scan->last_index = vals[3];
        return 0;
    case WAL_TYPE_STATE:
        /* raftpb.HardState {term 1, vote 2, commit 3} */
        if (pb_walk(d, n, 1u << 1 | 1u << 2 | 1u << 3, 0, vals) < 0)
            return scan_fail(scan, off, -EBADMSG, "undecodable hard state at offset %zu", off);
        scan->commit = vals[3];
        return 0;
    case WAL_TYPE_SNAPSHOT: {
        Walpb__Snapshot *s = walpb__snapshot__unpack(NULL, n, d);
        if (!s)
            return scan_fail(scan, off, -EBADMSG, "undecodable snapshot record at offset %zu", off);
        if (s->index == 0 && s->term == 0)
            scan->zero_snap = true;
        if (scan->on_snapshot)
            scan->on_snapshot(scan->arg, s->index, s->term);
        walpb__snapshot__free_unpacked(s, NULL);
        return 0;
    }
    case WAL_TYPE_CRC:
        return 0;
    default:
        return scan_fail(scan, off, -EBADMSG, "unexpected record type %" PRId64 " at offset %zu",
                         type, off);
    }
}

int datadir_wal_scan(const uint8_t *buf, size_t len, bool first_file, uint32_t *crc,
                     struct wal_scan *scan)
{
    uint32_t c = first_file ? 0 : *crc;
    size_t off = 0;
    int rc = 0;

    scan->reason[0] = '\0';
    while (off < len) {
        if (len - off < WAL_FRAME_BYTES) {
            rc = scan_fail(scan, off, 1, "file ends inside the length word at offset %zu", off);
            break;
        }
        uint64_t lw = le64(buf + off);
        if (lw == 0)
            break; /* end of data; the rest is preallocated zeros */
        uint64_t rec_bytes = lw & WAL_LEN_MASK;
        uint64_t pad = (lw >> 63) ? (lw >> 56) & 7 : 0;
        if (rec_bytes >= WAL_MAX_ENTRY_BYTES - pad) {
            rc = scan_fail(scan, off, -EBADMSG,
                           "record length %" PRIu64 " at offset %zu exceeds etcd's limit",
                           rec_bytes, off);
            break;
        }
        size_t data_off = off + WAL_FRAME_BYTES;
        size_t frame = (size_t)(rec_bytes + pad);
        if (frame > len - data_off) {
            rc = scan_fail(scan, off, 1, "file ends inside the record at offset %zu", off);
            break;
        }

        /* fault the record in before decoding: a read error (SIGBUS under guarded()) must not
         * strike inside the decoder, which would leak what it allocated */
        for (size_t p = 0; p < frame; p += 4096)
            (void)*(const volatile uint8_t *)(buf + data_off + p);
        Walpb__Record *rec = walpb__record__unpack(NULL, (size_t)rec_bytes, buf + data_off);
        if (!rec) {
            if (wal_torn(buf, data_off, frame))
                rc = scan_fail(scan, off, 1, "torn write at offset %zu", off);
            else
                rc = scan_fail(scan, off, -EBADMSG, "undecodable record at offset %zu", off);
            break;
        }
        const uint8_t *d = rec->has_data ? rec->data.data : NULL;
        size_t dn = rec->has_data ? rec->data.len : 0;
        uint32_t rcrc = rec->has_crc ? rec->crc : 0;
        int64_t type = rec->has_type ? rec->type : 0;

        if (type == WAL_TYPE_CRC) {
            /* wal.go ReadAll: the crc record must carry the running value (not checked while
             * it is still 0, at the start of the first file) and then replaces it. */
            if (c != 0 && rcrc != c) {
                walpb__record__free_unpacked(rec, NULL);
                rc = scan_fail(scan, off, -EBADMSG,
                               "crc record at offset %zu holds %08x, running CRC is %08x", off,
                               rcrc, c);
                break;
            }
            c = rcrc;
        } else {
            uint32_t next = crc32c_update(c, d, dn);
            if (rcrc != next) {
                walpb__record__free_unpacked(rec, NULL);
                if (wal_torn(buf, data_off, frame))
                    rc = scan_fail(scan, off, 1, "torn write at offset %zu", off);
                else
                    rc = scan_fail(scan, off, -EBADMSG,
                                   "CRC mismatch at offset %zu (stored %08x, computed %08x)", off,
                                   rcrc, next);
                break;
            }
            c = next;
        }
        int prc = wal_payload(type, d, dn, off, scan);
        walpb__record__free_unpacked(rec, NULL);
        if (prc < 0) {
            rc = prc;
            break;
        }
        scan->records++;
        off = data_off + frame;
    }
    if (rc == 0)
        scan->end_offset = off;
    scan->bytes += scan->end_offset;
    *crc = c;
    return rc;
}

/* ---- .snap ---------------------------------------------------------------------------------- */

/* raftpb.Snapshot {data 1 bytes, metadata 2 SnapshotMetadata {conf_state 1, index 2,
 * term 3}}; gogo merges repeated embedded messages, so later scalars win. */
static int snap_metadata(const uint8_t *p, size_t n, uint64_t *index, uint64_t *term)
{
    size_t off = 0;
    struct pb_field f;
    *index = *term = 0;
    while (off < n) {
        if (pb_next(p, n, &off, &f) < 0)
            return -EBADMSG;
        if ((f.num == 1 || f.num == 2) && f.wt != PB_LEN)
            return -EBADMSG;
        if (f.num != 2)
            continue;
        uint64_t vals[PB_VALS] = {0};
        vals[2] = *index;
        vals[3] = *term;
        if (pb_walk(f.sub, f.sublen, 1u << 2 | 1u << 3, 1u << 1, vals) < 0)
            return -EBADMSG;
        *index = vals[2];
        *term = vals[3];
    }
    return 0;
}

int datadir_snap_check(const uint8_t *buf, size_t len, uint64_t *index, uint64_t *term)
{
    /* snap/snapshotter.go Read(): empty file, empty data or a zero crc is ErrEmptySnapshot;
     * then the CRC-32C of data must match and data must decode as raftpb.Snapshot. */
    uint64_t idx = 0, trm = 0;
    if (len == 0)
        return -EBADMSG;
    Walpb__SnapFile *s = walpb__snap_file__unpack(NULL, len, buf);
    if (!s)
        return -EBADMSG;
    int rc = -EBADMSG;
    if (s->has_data && s->data.len > 0 && s->has_crc && s->crc != 0 &&
        crc32c_update(0, s->data.data, s->data.len) == s->crc &&
        snap_metadata(s->data.data, s->data.len, &idx, &trm) == 0)
        rc = 0;
    walpb__snap_file__free_unpacked(s, NULL);
    if (rc == 0 && index)
        *index = idx;
    if (rc == 0 && term)
        *term = trm;
    return rc;
}

/* ---- the data dir --------------------------------------------------------------------------- */

struct wal_name {
    uint64_t seq, index;
};

static void corrupt(struct datadir_report *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void corrupt(struct datadir_report *out, const char *fmt, ...)
{
    if (out->verdict == DATADIR_CORRUPT || out->io_error)
        return; /* the first problem found is the reason; a read error explains the rest */
    out->verdict = DATADIR_CORRUPT;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

/* A failed read: unlike corrupt(), the data may be intact; the inspection reports -errno. */
static void io_failed(struct datadir_report *out, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void io_failed(struct datadir_report *out, int err, const char *fmt, ...)
{
    if (out->io_error)
        return;
    out->io_error = err;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

/* Reading a mapped page that cannot be read back (EIO from the disk, or the file shrunk under
 * us) raises SIGBUS; the guarded scans below turn it into -EIO instead of a crash. SIGBUS
 * from a fault goes to the faulting thread, hence a per-thread jump buffer. */
static __thread sigjmp_buf *bus_jmp;

static void on_sigbus(int sig)
{
    if (bus_jmp)
        siglongjmp(*bus_jmp, 1);
    (void)signal(sig, SIG_DFL); /* a fault outside a guarded scan: crash as before */
    (void)raise(sig);
}

struct guarded_scan {
    const uint8_t *map;
    size_t len;
    bool first_file;
    uint32_t *crc;
    struct wal_scan *scan;  /* WAL: datadir_wal_scan */
    uint64_t *index, *term; /* .snap: datadir_snap_check */
};

/* Run one scan of a mapping with SIGBUS caught; -EIO if a page could not be read. */
static int guarded(const struct guarded_scan *g)
{
    struct sigaction sa, old;
    sigjmp_buf jb;
    volatile int rc = -EIO;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &old) < 0)
        return -errno;
    if (sigsetjmp(jb, 1) == 0) {
        bus_jmp = &jb;
        if (g->scan) {
            rc = datadir_wal_scan(g->map, g->len, g->first_file, g->crc, g->scan);
        } else {
            /* touch every page first: a fault inside the decoder would leak its allocations */
            for (size_t i = 0; i < g->len; i += 4096)
                (void)*(const volatile uint8_t *)(g->map + i);
            rc = datadir_snap_check(g->map, g->len, g->index, g->term);
        }
    }
    bus_jmp = NULL;
    (void)sigaction(SIGBUS, &old, NULL);
    return rc;
}

static bool parse_hex16(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < WAL_NAME_HEX; i++) {
        char ch = s[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

/* "%016x-%016x.wal", as etcd names them. Anything else etcd ignores (0.tmp, *.tmp). */
static bool wal_parse_name(const char *name, struct wal_name *w)
{
    if (strlen(name) != 2 * WAL_NAME_HEX + 1 + 4 || name[WAL_NAME_HEX] != '-' ||
        strcmp(name + 2 * WAL_NAME_HEX + 1, ".wal") != 0)
        return false;
    return parse_hex16(name, &w->seq) && parse_hex16(name + WAL_NAME_HEX + 1, &w->index);
}

static int wal_name_cmp(const void *a, const void *b)
{
    const struct wal_name *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Map a whole file read-only. *len 0 gives map NULL. */
static int map_file(int dfd, const char *name, const uint8_t **map, size_t *len)
{
    int rc = 0;
    *map = NULL;
    *len = 0;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    if (st.st_size == 0)
        goto out;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        rc = -errno;
        goto out;
    }
    (void)madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
    *map = p;
    *len = (size_t)st.st_size;
out:
    close(fd);
    return rc;
}

static void unmap_file(const uint8_t *map, size_t len)
{
    if (map)
        munmap((void *)(uintptr_t)map, len);
}

/* A directory stream over a duplicate of fd (fd stays open for openat; closedir closes only the
 * duplicate). NULL with errno set on failure. */
static DIR *dir_stream(int fd)
{
    int dup_fd = dup(fd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d && dup_fd >= 0) {
        int e = errno;
        close(dup_fd);
        errno = e;
    }
    return d;
}

/* List member/wal: sorted WAL names into *names (malloc'd). -ENOENT if the dir is absent. */
static int wal_list(int member_fd, int *wal_fd, struct wal_name **names, size_t *n,
                    struct datadir_report *out)
{
    int rc = 0;
    size_t cap = 0;
    DIR *d = NULL;
    *names = NULL;
    *n = 0;
    *wal_fd = openat(member_fd, "wal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*wal_fd < 0)
        return -errno;
    if (!(d = dir_stream(*wal_fd))) {
        rc = -errno;
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        struct wal_name w;
        if (!wal_parse_name(de->d_name, &w))
            continue;
        if (*n == DATADIR_MAX_WAL_FILES) {
            corrupt(out, "more than %d WAL files in member/wal", DATADIR_MAX_WAL_FILES);
            break;
        }
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct wal_name *nn = realloc(*names, ncap * sizeof *nn);
            if (!nn) {
                rc = -ENOMEM;
                goto out;
            }
            *names = nn;
            cap = ncap;
        }
        (*names)[(*n)++] = w;
    }
    if (*n)
        qsort(*names, *n, sizeof **names, wal_name_cmp);
out:
    if (d)
        closedir(d);
    return rc;
}

/* The .snap files of member/snap, newest name first (etcd's snapNames order). */
struct snap_file {
    char name[NAME_MAX + 1];
    bool ok;      /* loadable */
    bool matched; /* a WAL snapshot record has the same index and term */
    uint64_t index, term;
};

struct snap_list {
    struct snap_file *v;
    size_t n;
};

static int snap_name_cmp(const void *a, const void *b)
{
    const struct snap_file *x = a, *y = b;
    return -strcmp(x->name, y->name);
}

static void snap_matched(void *arg, uint64_t index, uint64_t term)
{
    struct snap_list *l = arg;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].ok && l->v[i].index == index && l->v[i].term == term)
            l->v[i].matched = true;
}

/* Scan all WAL files in order; fills out and, for the snapshot decision, *scan. */
static void wal_check(int wal_fd, const struct wal_name *names, size_t n, struct snap_list *snaps,
                      struct wal_scan *scan_out, struct datadir_report *out)
{
    struct wal_scan scan;
    uint32_t crc = 0;
    memset(&scan, 0, sizeof scan);
    scan.on_snapshot = snap_matched;
    scan.arg = snaps;

    /* etcd's isValidSeq; the files are still scanned so that the IDs get reported */
    for (size_t i = 1; i < n; i++) {
        if (names[i].seq != names[i - 1].seq + 1) {
            corrupt(out, "member/wal: sequence gap between %016" PRIx64 " and %016" PRIx64,
                    names[i - 1].seq, names[i].seq);
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char name[64];
        (void)snprintf(name, sizeof name, "%016" PRIx64 "-%016" PRIx64 ".wal", names[i].seq,
                       names[i].index);
        const uint8_t *map;
        size_t len;
        int rc = map_file(wal_fd, name, &map, &len);
        if (rc == -EIO) {
            io_failed(out, EIO, "member/wal/%s: read error: %s", name, strerror(EIO));
            break;
        }
        if (rc < 0) {
            corrupt(out, "member/wal/%s: cannot read: %s", name, strerror(-rc));
            break;
        }
        struct guarded_scan g = {
            .map = map, .len = len, .first_file = i == 0, .crc = &crc, .scan = &scan};
        rc = guarded(&g);
        unmap_file(map, len);
        if (rc == -EIO && !scan.reason[0]) {
            io_failed(out, EIO, "member/wal/%s: read error: %s", name, strerror(EIO));
            break;
        }
        if (rc < 0) {
            corrupt(out, "member/wal/%s: %s", name, scan.reason);
            break;
        }
        if (rc == 1) {
            if (i + 1 < n) {
                corrupt(out, "member/wal/%s: %s (not the last WAL file)", name, scan.reason);
                break;
            }
            out->wal_torn_tail = true; /* etcd's wal.Repair truncates it on start */
        }
    }
    out->wal_records = scan.records;
    out->wal_bytes = scan.bytes;
    out->wal_last_index = scan.last_index;
    if (scan.have_ids) {
        out->ids_known = true;
        out->member_id = scan.member_id;
        out->cluster_id = scan.cluster_id;
        if (scan.member_id == 0 || scan.cluster_id == 0)
            corrupt(out, "member/wal: metadata record has a zero member or cluster ID");
    } else {
        corrupt(out, "member/wal: no metadata record");
    }
    *scan_out = scan;
}

static void db_check(int snap_fd, struct datadir_report *out)
{
    uint8_t page[BBOLT_META_LEN];
    struct bbolt_meta m0, m1;
    struct stat st;
    int fd = openat(snap_fd, "db", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        corrupt(out, "member/snap/db: cannot open: %s", strerror(errno));
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        corrupt(out, "member/snap/db: not a regular file");
        goto out;
    }
    /* bbolt Open: page size from meta 0 if it validates, else the OS page size. */
    ssize_t r = pread(fd, page, sizeof page, 0);
    if (r < 0) {
        io_failed(out, errno, "member/snap/db: read error: %s", strerror(errno));
        goto out;
    }
    if (r != (ssize_t)sizeof page) {
        corrupt(out, "member/snap/db: too short for a meta page (%lld bytes)",
                (long long)st.st_size);
        goto out;
    }
    datadir_bbolt_meta(page, sizeof page, &m0);
    uint32_t ps = (uint32_t)sysconf(_SC_PAGESIZE);
    if (m0.valid && bbolt_page_size_ok(m0.page_size))
        ps = m0.page_size;
    else
        m0.valid = false;
    out->db_page_size = ps;
    if ((uint64_t)st.st_size < 2ull * ps) {
        corrupt(out,
                "member/snap/db: file size %lld below two pages of %u (bbolt: file size "
                "too small)",
                (long long)st.st_size, ps);
        goto out;
    }
    r = pread(fd, page, sizeof page, (off_t)ps);
    if (r < 0) {
        io_failed(out, errno, "member/snap/db: read error: %s", strerror(errno));
        goto out;
    }
    if (r != (ssize_t)sizeof page)
        memset(page, 0, sizeof page);
    datadir_bbolt_meta(page, sizeof page, &m1);
    out->db_valid_metas = (int)m0.valid + (int)m1.valid;
    if (out->db_valid_metas == 0) {
        corrupt(out, "member/snap/db: both bbolt meta pages are invalid (page size %u)", ps);
        goto out;
    }
    /* bbolt's db.meta(): the valid one with the higher txid */
    const struct bbolt_meta *use = &m0;
    if (!m0.valid || (m1.valid && m1.txid > m0.txid))
        use = &m1;
    out->db_txid = use->txid;
    /* bbolt grows the file before a commit's meta points past it; pages beyond the end would
     * fault when etcd touches them. */
    if (use->high_water_pgid > (uint64_t)st.st_size / ps) {
        corrupt(out, "member/snap/db: high-water page %" PRIu64 " beyond the file (%lld bytes)",
                use->high_water_pgid, (long long)st.st_size);
        goto out;
    }
    if (use->root_pgid >= use->high_water_pgid ||
        (use->freelist_pgid != BBOLT_NO_FREELIST && use->freelist_pgid >= use->high_water_pgid)) {
        corrupt(out, "member/snap/db: meta points past its high-water page %" PRIu64,
                use->high_water_pgid);
        goto out;
    }
out:
    close(fd);
}

/* Read member/snap: note db, check every .snap (etcd's checkSuffix). */
static int snap_dir_check(int snap_fd, struct snap_list *l, struct datadir_report *out)
{
    int rc = 0;
    size_t cap = 0;
    DIR *d = dir_stream(snap_fd);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, "db") == 0) {
            out->has_db = true;
            continue;
        }
        if (!has_suffix(de->d_name, ".snap"))
            continue;
        if (l->n == DATADIR_MAX_SNAP_FILES) {
            corrupt(out, "more than %d .snap files in member/snap", DATADIR_MAX_SNAP_FILES);
            break;
        }
        if (l->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct snap_file *nv = realloc(l->v, ncap * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                goto out;
            }
            l->v = nv;
            cap = ncap;
        }
        struct snap_file *sf = &l->v[l->n++];
        memset(sf, 0, sizeof *sf);
        memcpy(sf->name, de->d_name, strlen(de->d_name) + 1);
    }
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, snap_name_cmp);
    out->snap_files = l->n;
    for (size_t i = 0; i < l->n; i++) {
        struct snap_file *sf = &l->v[i];
        const uint8_t *map;
        size_t len;
        struct stat st;
        if (fstatat(snap_fd, sf->name, &st, 0) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_size > DATADIR_MAX_SNAP_FILE) {
            corrupt(out, "member/snap/%s: larger than %u bytes", sf->name, DATADIR_MAX_SNAP_FILE);
            continue;
        }
        if (map_file(snap_fd, sf->name, &map, &len) < 0) {
            out->snap_broken++; /* etcd skips what it cannot read */
            continue;
        }
        struct guarded_scan g = {.map = map, .len = len, .index = &sf->index, .term = &sf->term};
        int src = guarded(&g);
        unmap_file(map, len);
        if (src == -EIO)
            io_failed(out, EIO, "member/snap/%s: read error: %s", sf->name, strerror(EIO));
        sf->ok = src == 0;
        if (!sf->ok)
            out->snap_broken++;
    }
out:
    closedir(d);
    return rc;
}

int datadir_inspect(const char *data_dir, struct datadir_report *out)
{
    int rc = 0, dir_fd = -1, member_fd = -1, wal_fd = -1, snap_fd = -1;
    struct wal_name *names = NULL;
    struct snap_list snaps = {0};
    struct wal_scan scan;
    size_t nwal = 0;
    uint64_t t0 = (uint64_t)clock_mono_us();

    memset(out, 0, sizeof *out);
    memset(&scan, 0, sizeof scan);
    out->verdict = DATADIR_EMPTY;
    dir_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        if (errno == ENOENT)
            goto out;
        rc = -errno;
        (void)snprintf(out->reason, sizeof out->reason, "%s: %s", data_dir, strerror(errno));
        goto out;
    }
    member_fd = openat(dir_fd, "member", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (member_fd < 0) {
        if (errno == ENOENT)
            goto out;
        rc = -errno;
        (void)snprintf(out->reason, sizeof out->reason, "%s/member: %s", data_dir, strerror(errno));
        goto out;
    }

    int lrc = wal_list(member_fd, &wal_fd, &names, &nwal, out);
    if (lrc < 0 && lrc != -ENOENT) {
        rc = lrc;
        (void)snprintf(out->reason, sizeof out->reason, "%s/member/wal: %s", data_dir,
                       strerror(-lrc));
        goto out;
    }
    out->wal_files = nwal;

    snap_fd = openat(member_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (snap_fd < 0 && errno != ENOENT) {
        rc = -errno;
        (void)snprintf(out->reason, sizeof out->reason, "%s/member/snap: %s", data_dir,
                       strerror(errno));
        goto out;
    }
    if (snap_fd >= 0 && (lrc = snap_dir_check(snap_fd, &snaps, out)) < 0) {
        rc = lrc;
        (void)snprintf(out->reason, sizeof out->reason, "%s/member/snap: %s", data_dir,
                       strerror(-lrc));
        goto out;
    }

    if (nwal == 0 && !out->has_db && out->snap_files == 0 && out->verdict != DATADIR_CORRUPT)
        goto out; /* EMPTY: etcd would bootstrap here (wal.Exist is false) */

    out->verdict = out->verdict == DATADIR_CORRUPT ? DATADIR_CORRUPT : DATADIR_VALID;
    if (nwal == 0) {
        /* etcd would start a new member on top of it; it may be the last copy of the data */
        corrupt(out, "member/ holds %s but no WAL", out->has_db ? "snap/db" : ".snap files");
        if (out->has_db)
            db_check(snap_fd, out);
        goto out;
    }
    wal_check(wal_fd, names, nwal, &snaps, &scan, out);

    /* etcd 3.4.23 NewServer: the newest loadable .snap that matches a WAL snapshot record at
     * or below the last committed index; with none it replays the WAL from the {0,0} record
     * wal.Create wrote, which is gone once old WAL files were purged. */
    const struct snap_file *use = NULL;
    for (size_t i = 0; i < snaps.n && !use; i++)
        if (snaps.v[i].ok && snaps.v[i].matched && snaps.v[i].index <= scan.commit)
            use = &snaps.v[i];
    if (use)
        out->snap_index = use->index;
    else if (!scan.zero_snap)
        corrupt(out, "member/wal: no usable .snap matches a WAL snapshot record and the WAL no "
                     "longer starts at index 0 (etcd: snapshot not found)");

    if (out->has_db)
        db_check(snap_fd, out);
    else if (use)
        /* etcd 3.4 opens a fresh db and would need the snapshot's db to restore it; only
         * starting from index 0 (no snapshot) replays everything into the new db. */
        corrupt(out,
                "member/snap/db missing while etcd would start from snapshot %016" PRIx64
                "-%016" PRIx64 ".snap: etcd cannot rebuild it",
                use->term, use->index);
out:
    if (rc == 0 && out->io_error)
        rc = -out->io_error; /* reason set by io_failed() */
    free(names);
    free(snaps.v);
    if (snap_fd >= 0)
        close(snap_fd);
    if (wal_fd >= 0)
        close(wal_fd);
    if (member_fd >= 0)
        close(member_fd);
    if (dir_fd >= 0)
        close(dir_fd);
    out->took_us = (uint64_t)clock_mono_us() - t0;
    return rc;
}

/* ---- lock test ------------------------------------------------------------------------------ */

int datadir_wal_locked(const char *data_dir)
{
    char path[4096];
    int rc = 0, wal_fd = -1;
    DIR *d = NULL;

    if (snprintf(path, sizeof path, "%s/member/wal", data_dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    wal_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (wal_fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!(d = dir_stream(wal_fd))) {
        rc = -errno;
        goto out;
    }
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        struct wal_name w;
        if (!wal_parse_name(de->d_name, &w))
            continue;
        int fd = openat(wal_fd, de->d_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue; /* etcd purged it meanwhile */
            rc = -errno;
            break;
        }
        /* etcd 3.4 (pkg/fileutil/lock_linux.go) takes F_OFD_SETLK write locks over the whole
         * file; GETLK reports a conflicting lock without taking one. The pre-3.15-kernel
         * fallback to classic POSIX locks is mirrored; etcd's flock fallback is not (only
         * used when OFD locks are missing, i.e. kernels older than 3.15). */
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        int r = fcntl(fd, F_OFD_GETLK, &fl);
        if (r < 0 && errno == EINVAL) {
            memset(&fl, 0, sizeof fl);
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            r = fcntl(fd, F_GETLK, &fl);
        }
        if (r < 0)
            rc = -errno;
        else if (fl.l_type != F_UNLCK)
            rc = 1;
        close(fd);
    }
out:
    if (d)
        closedir(d);
    if (wal_fd >= 0)
        close(wal_fd);
    return rc;
}
