/* test_datadir.c - unit tests of common/datadir.c and common/crc32c.c on synthetic data dirs
 * built in a mkdtemp dir: a WAL writer with etcd's framing and CRC chain, bbolt meta pages
 * with FNV checksums, .snap files. The real etcd data dir is tests/integration's job. */
#include "crc32c.h"
#include "datadir.h"
#include "etcd.pb-c.h"
#include "wal.pb-c.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define MEMBER_ID 0x8e9e05c52164694dull
#define CLUSTER_ID 0xcdf818194e3a8c32ull
#define PAGE 4096u
#define PREALLOC 8192u /* zeros after the data, like etcd's preallocated segment */

/* ---- WAL writer ---------------------------------------------------------------------------- */

struct walw {
    uint8_t *buf;
    size_t len, cap;
    uint32_t crc;
};

static void w_put(struct walw *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        size_t ncap = w->cap ? w->cap : 4096;
        while (ncap < w->len + n)
            ncap *= 2;
        w->buf = realloc(w->buf, ncap);
        assert_non_null(w->buf);
        w->cap = ncap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* One record as etcd's encoder writes it: running CRC, length word with padding. */
static void w_record(struct walw *w, int64_t type, const uint8_t *data, size_t n)
{
    Walpb__Record rec = WALPB__RECORD__INIT;
    rec.has_type = 1;
    rec.type = type;
    if (type != 4)
        w->crc = crc32c_update(w->crc, data, n);
    rec.has_crc = 1;
    rec.crc = w->crc;
    if (data) {
        rec.has_data = 1;
        rec.data.data = (uint8_t *)(uintptr_t)data;
        rec.data.len = n;
    }
    size_t sz = walpb__record__get_packed_size(&rec);
    uint8_t *tmp = malloc(sz + 8);
    assert_non_null(tmp);
    walpb__record__pack(&rec, tmp);
    uint64_t pad = (8 - sz % 8) % 8;
    uint64_t lw = sz | (pad ? (0x80 | pad) << 56 : 0);
    uint8_t lwb[8];
    for (int i = 0; i < 8; i++)
        lwb[i] = (uint8_t)(lw >> (8 * i));
    w_put(w, lwb, 8);
    memset(tmp + sz, 0, 8);
    w_put(w, tmp, sz + pad);
    free(tmp);
}

static size_t pb_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static void w_metadata(struct walw *w, uint64_t mid, uint64_t cid)
{
    Etcdserverpb__Metadata md = ETCDSERVERPB__METADATA__INIT;
    uint8_t b[32];
    md.nodeid = mid;
    md.clusterid = cid;
    size_t n = etcdserverpb__metadata__pack(&md, b);
    w_record(w, 1, b, n);
}

static void w_entry(struct walw *w, uint64_t term, uint64_t index, size_t data_len)
{
    uint8_t *b = malloc(32 + data_len);
    assert_non_null(b);
    size_t n = 0;
    b[n++] = 0x08; /* Type 1 = EntryNormal 0 */
    b[n++] = 0;
    b[n++] = 0x10; /* Term 2 */
    n += pb_varint(b + n, term);
    b[n++] = 0x18; /* Index 3 */
    n += pb_varint(b + n, index);
    b[n++] = 0x22; /* Data 4 */
    n += pb_varint(b + n, data_len);
    for (size_t i = 0; i < data_len; i++)
        b[n++] = (uint8_t)('a' + (index + i) % 26);
    w_record(w, 2, b, n);
    free(b);
}

static void w_state(struct walw *w, uint64_t term, uint64_t commit)
{
    uint8_t b[32];
    size_t n = 0;
    b[n++] = 0x08;
    n += pb_varint(b + n, term);
    b[n++] = 0x18;
    n += pb_varint(b + n, commit);
    w_record(w, 3, b, n);
}

static void w_snapshot(struct walw *w, uint64_t index, uint64_t term)
{
    Walpb__Snapshot s = WALPB__SNAPSHOT__INIT;
    uint8_t b[32];
    s.has_index = 1;
    s.index = index;
    s.has_term = 1;
    s.term = term;
    size_t n = walpb__snapshot__pack(&s, b);
    w_record(w, 5, n ? b : NULL, n);
}

/* Start a file the way wal.Create / wal.cut do: crc record carrying the running CRC, then
 * metadata, then a snapshot record (first file) or the hard state. */
static void w_file_start(struct walw *w, bool first, uint64_t mid, uint64_t cid)
{
    w->len = 0;
    w_record(w, 4, NULL, 0);
    w_metadata(w, mid, cid);
    if (first)
        w_snapshot(w, 0, 0);
    else
        w_state(w, 2, 20);
}

/* ---- files --------------------------------------------------------------------------------- */

static char g_dir[256];
static uint32_t g_crc0; /* running CRC at the end of build_valid's first file */

static void path_of(char *out, size_t n, const char *rel)
{
    assert_true(snprintf(out, n, "%s/%s", g_dir, rel) < (int)n);
}

static void write_file(const char *rel, const uint8_t *p, size_t n, size_t zeros)
{
    char path[512];
    path_of(path, sizeof path, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    uint8_t z[512] = {0};
    while (zeros) {
        size_t k = zeros < sizeof z ? zeros : sizeof z;
        assert_int_equal(fwrite(z, 1, k, f), k);
        zeros -= k;
    }
    assert_int_equal(fclose(f), 0);
}

static void mk(const char *rel)
{
    char path[512];
    path_of(path, sizeof path, rel);
    assert_int_equal(mkdir(path, 0700), 0);
}

static void wal_name(char *out, size_t n, uint64_t seq, uint64_t index)
{
    assert_true(snprintf(out, n, "member/wal/%016" PRIx64 "-%016" PRIx64 ".wal", seq, index) <
                (int)n);
}

/* A db of `pages` pages with metas txid 5 (page 0) and 6 (page 1). */
static void write_db(uint32_t page_size, uint64_t pages, bool bad0, bool bad1)
{
    size_t n = (size_t)(page_size * pages);
    uint8_t *db = calloc(1, n);
    assert_non_null(db);
    test_bbolt_meta(db, 0, page_size, 5, pages);
    test_bbolt_meta(db + page_size, 1, page_size, 6, pages);
    if (bad0)
        db[16 + 40] ^= 0xff; /* hwm byte: checksum no longer holds */
    if (bad1)
        db[page_size + 16] ^= 0x01; /* magic */
    write_file("member/snap/db", db, n, 0);
    free(db);
}

/* snappb.snapshot around a raftpb.Snapshot {data 1, metadata 2 {conf_state 1, index 2,
 * term 3}}, as etcd's snapshotter writes it; into out (>= 256 bytes), returns its length. */
static size_t snap_bytes(uint8_t *out, uint64_t term, uint64_t index, bool good)
{
    Walpb__SnapFile s = WALPB__SNAP_FILE__INIT;
    uint8_t data[160], md[40];
    size_t n = 0, mn = 0;
    md[mn++] = 0x0a; /* conf_state {voters: 5} */
    md[mn++] = 2;
    md[mn++] = 0x08;
    md[mn++] = 5;
    md[mn++] = 0x10;
    mn += pb_varint(md + mn, index);
    md[mn++] = 0x18;
    mn += pb_varint(md + mn, term);
    data[n++] = 0x0a; /* data: 100 bytes of v2 store JSON, in real life */
    data[n++] = 100;
    for (size_t i = 0; i < 100; i++)
        data[n++] = (uint8_t)('0' + i % 10);
    data[n++] = 0x12;
    data[n++] = (uint8_t)mn;
    memcpy(data + n, md, mn);
    n += mn;
    s.has_crc = 1;
    s.crc = crc32c_update(0, data, n) ^ (good ? 0 : 1);
    s.has_data = 1;
    s.data.data = data;
    s.data.len = n;
    return walpb__snap_file__pack(&s, out);
}

static void write_snap(const char *rel, uint64_t term, uint64_t index, bool good)
{
    uint8_t out[256];
    size_t n = snap_bytes(out, term, index, good);
    write_file(rel, out, n, 0);
}

/* A good data dir: two WAL files (entries 1..40, a snapshot record {20, term 2} after the
 * commit of 20 in the first), db, one .snap for that snapshot. *w holds the second file
 * (caller frees w->buf); g_crc0 the CRC the second file starts from. */
/* WAL file 0 from scratch: header records, entries 1..20 of term 2, a HardState at commit 20. */
static void w_file0(struct walw *w)
{
    memset(w, 0, sizeof *w);
    w_file_start(w, true, MEMBER_ID, CLUSTER_ID);
    for (uint64_t i = 1; i <= 20; i++)
        w_entry(w, 2, i, (size_t)(i * 37 % 700));
    w_state(w, 2, 20);
}

static void build_valid(struct walw *w, bool with_db, bool with_snap)
{
    char name[128];
    mk("member");
    mk("member/wal");
    mk("member/snap");
    w_file0(w);
    w_snapshot(w, 20, 2);
    wal_name(name, sizeof name, 0, 0);
    write_file(name, w->buf, w->len, PREALLOC);
    g_crc0 = w->crc;
    w_file_start(w, false, MEMBER_ID, CLUSTER_ID);
    for (uint64_t i = 21; i <= 40; i++)
        w_entry(w, 2, i, (size_t)(i * 53 % 900));
    wal_name(name, sizeof name, 1, 21);
    write_file(name, w->buf, w->len, PREALLOC);
    if (with_db)
        write_db(PAGE, 4, false, false);
    if (with_snap)
        write_snap("member/snap/0000000000000002-0000000000000014.snap", 2, 20, true);
}

static void inspect(struct datadir_report *r)
{
    assert_int_equal(datadir_inspect(g_dir, r), 0);
}

static void expect_corrupt(const char *needle)
{
    struct datadir_report r;
    inspect(&r);
    if (r.verdict != DATADIR_CORRUPT || !strstr(r.reason, needle))
        fail_msg("want CORRUPT with \"%s\", got verdict %d reason \"%s\"", needle, (int)r.verdict,
                 r.reason);
}

static int setup(void **state)
{
    (void)state;
    assert_true(snprintf(g_dir, sizeof g_dir, "/tmp/test_datadir.XXXXXX") < (int)sizeof g_dir);
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_tree(g_dir);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_crc32c_vectors(void **state)
{
    (void)state;
    const uint8_t *s = (const uint8_t *)"123456789";
    assert_int_equal(crc32c_update(0, s, 9), 0xE3069283u);
    assert_int_equal(crc32c_update_sw(0, s, 9), 0xE3069283u);
    assert_int_equal(datadir_crc32c(0, s, 9), 0xE3069283u);
    assert_int_equal(crc32c_update(0, s, 0), 0);
    uint8_t z[32] = {0};
    assert_int_equal(crc32c_update(0, z, 32), 0x8A9136AAu); /* RFC 3720 B.4: 32 zero bytes */
    /* chaining, and hardware == table for every length and alignment */
    assert_int_equal(crc32c_update(crc32c_update(0, s, 4), s + 4, 5), 0xE3069283u);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t a = 0; a < 8; a++)
        for (size_t n = 0; n + a <= sizeof buf; n += 13)
            assert_int_equal(crc32c_update(7, buf + a, n), crc32c_update_sw(7, buf + a, n));
}

static void test_empty_absent(void **state)
{
    (void)state;
    struct datadir_report r;
    char p[512];
    path_of(p, sizeof p, "nope");
    assert_int_equal(datadir_inspect(p, &r), 0);
    assert_int_equal(r.verdict, DATADIR_EMPTY);
    inspect(&r); /* empty dir */
    assert_int_equal(r.verdict, DATADIR_EMPTY);
    write_file("lost+found-ish", (const uint8_t *)"x", 1, 0);
    inspect(&r); /* no member/ */
    assert_int_equal(r.verdict, DATADIR_EMPTY);
    mk("member");
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_EMPTY);
    mk("member/wal");
    mk("member/snap");
    write_file("member/wal/0.tmp", NULL, 0, 4096);
    inspect(&r); /* only etcd's preallocation temp file */
    assert_int_equal(r.verdict, DATADIR_EMPTY);
    assert_false(r.ids_known);
    assert_int_equal(datadir_wal_locked(g_dir), 0);
    assert_int_equal(datadir_wal_locked(p), 0);
}

static void test_not_a_dir(void **state)
{
    (void)state;
    struct datadir_report r;
    char p[512];
    write_file("file", (const uint8_t *)"x", 1, 0);
    path_of(p, sizeof p, "file");
    assert_int_equal(datadir_inspect(p, &r), -ENOTDIR);
    assert_true(r.reason[0] != '\0');
}

static void test_valid(void **state)
{
    (void)state;
    struct walw w;
    struct datadir_report r;
    build_valid(&w, true, true);
    free(w.buf);
    write_file("member/wal/0.tmp", NULL, 0, 4096);
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_string_equal(r.reason, "");
    assert_true(r.ids_known);
    assert_true(r.member_id == MEMBER_ID);
    assert_true(r.cluster_id == CLUSTER_ID);
    assert_int_equal(r.wal_files, 2);
    assert_int_equal(r.wal_records, 3 + 20 + 2 + 3 + 20);
    assert_int_equal(r.snap_index, 20);
    assert_int_equal(r.snap_broken, 0);
    assert_int_equal(r.wal_last_index, 40);
    assert_false(r.wal_torn_tail);
    assert_true(r.has_db);
    assert_int_equal(r.db_valid_metas, 2);
    assert_int_equal(r.db_page_size, PAGE);
    assert_int_equal(r.db_txid, 6);
    assert_int_equal(r.snap_files, 1);
    assert_true(r.wal_bytes > 0);
}

static void test_db_metas(void **state)
{
    (void)state;
    struct walw w;
    struct datadir_report r;
    build_valid(&w, false, false);
    free(w.buf);
    write_db(PAGE, 4, false, true); /* meta 1 bad: meta 0 (txid 5) used */
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_int_equal(r.db_valid_metas, 1);
    assert_int_equal(r.db_txid, 5);
    write_db(PAGE, 4, true, false); /* meta 0 bad: page size from the OS, meta 1 used */
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_int_equal(r.db_valid_metas, 1);
    assert_int_equal(r.db_txid, 6);
    write_db(PAGE, 4, true, true);
    expect_corrupt("both bbolt meta pages are invalid");
    inspect(&r);
    assert_int_equal(r.db_valid_metas, 0);
    assert_true(r.ids_known); /* the WAL was still read */
}

static void test_db_page_size_from_meta0(void **state)
{
    (void)state;
    struct walw w;
    struct datadir_report r;
    build_valid(&w, false, false);
    free(w.buf);
    write_db(16384, 4, false, false);
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_int_equal(r.db_page_size, 16384);
    assert_int_equal(r.db_valid_metas, 2);
}

static void test_db_truncated(void **state)
{
    (void)state;
    struct walw w;
    build_valid(&w, false, false);
    free(w.buf);
    uint8_t db[2 * PAGE] = {0};
    test_bbolt_meta(db, 0, PAGE, 5, 4); /* says 4 pages, file holds 2 */
    test_bbolt_meta(db + PAGE, 1, PAGE, 6, 4);
    write_file("member/snap/db", db, sizeof db, 0);
    expect_corrupt("beyond the file");
    write_file("member/snap/db", db, PAGE, 0); /* shorter than two pages */
    expect_corrupt("file size too small");
    write_file("member/snap/db", db, 10, 0);
    expect_corrupt("too short");
}

static void test_bbolt_meta_bytes(void **state)
{
    (void)state;
    uint8_t p[80];
    struct bbolt_meta m;
    test_bbolt_meta(p, 0, PAGE, 9, 4);
    assert_int_equal(datadir_bbolt_meta(p, 80, &m), 0);
    assert_true(m.valid);
    assert_int_equal(m.txid, 9);
    assert_int_equal(m.page_size, PAGE);
    assert_int_equal(m.high_water_pgid, 4);
    assert_int_equal(datadir_bbolt_meta(p, 79, &m), -EMSGSIZE);
    test_put_le64(p + 72, 0); /* bbolt 1.3.6 accepts a zero checksum */
    assert_int_equal(datadir_bbolt_meta(p, 80, &m), 0);
    test_put_le64(p + 72, 1);
    assert_int_equal(datadir_bbolt_meta(p, 80, &m), -EINVAL);
    assert_false(m.valid);
    test_bbolt_meta(p, 0, PAGE, 9, 4);
    test_put_le32(p + 20, 1); /* version */
    assert_int_equal(datadir_bbolt_meta(p, 80, &m), -EINVAL);
}

/* The last file cut short inside a record: etcd repairs it; VALID with the flag. */
static void test_torn_tail_last_file(void **state)
{
    (void)state;
    struct walw w;
    struct datadir_report r;
    char name[128];
    build_valid(&w, true, false);
    size_t keep = w.len - 100; /* inside the last entry */
    wal_name(name, sizeof name, 1, 21);
    write_file(name, w.buf, keep, 0);
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_true(r.wal_torn_tail);
    assert_int_equal(r.wal_last_index, 39);
    /* torn write inside the preallocated file: the record's tail sectors stayed zero */
    write_file(name, w.buf, keep, PREALLOC);
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_true(r.wal_torn_tail);
    /* the file ends 3 bytes into a new length word */
    w_put(&w, "\x10\0\0", 3);
    write_file(name, w.buf, w.len, 0);
    free(w.buf);
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_true(r.wal_torn_tail);
}

static void test_torn_in_earlier_file(void **state)
{
    (void)state;
    struct walw w;
    char name[128];
    build_valid(&w, true, false);
    free(w.buf);
    w_file0(&w); /* rebuild file 0 and cut it short */
    wal_name(name, sizeof name, 0, 0);
    write_file(name, w.buf, w.len - 5, 0);
    free(w.buf);
    expect_corrupt("not the last WAL file");
}

static void test_flipped_byte(void **state)
{
    (void)state;
    struct walw w;
    char name[128];
    build_valid(&w, true, false);
    w.buf[w.len - 40] ^= 0x20; /* inside the last entry's data */
    wal_name(name, sizeof name, 1, 21);
    write_file(name, w.buf, w.len, PREALLOC);
    free(w.buf);
    expect_corrupt("CRC mismatch");
    expect_corrupt(name + strlen("member/wal/"));
}

static void test_flipped_byte_first_file(void **state)
{
    (void)state;
    struct walw w;
    char name[128];
    build_valid(&w, true, false);
    free(w.buf);
    w_file0(&w);
    w.buf[200] ^= 0x01;
    wal_name(name, sizeof name, 0, 0);
    write_file(name, w.buf, w.len, PREALLOC);
    free(w.buf);
    struct datadir_report r;
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_CORRUPT);
}

/* The second file's crc record must carry the first file's running CRC. */
static void test_crc_chain_across_files(void **state)
{
    (void)state;
    struct walw w;
    char name[128];
    build_valid(&w, true, false);
    w.crc = g_crc0 ^ 0x1234; /* break the carried value */
    w_file_start(&w, false, MEMBER_ID, CLUSTER_ID);
    wal_name(name, sizeof name, 1, 21);
    write_file(name, w.buf, w.len, PREALLOC);
    free(w.buf);
    expect_corrupt("crc record");
}

/* etcd 3.4.23 skips a broken .snap (renames it .broken) and uses the newest loadable one
 * that matches a WAL snapshot record: not corrupt. Verified against etcd 3.4.23. */
static void test_bad_snap(void **state)
{
    (void)state;
    struct walw w;
    struct datadir_report r;
    build_valid(&w, true, true);
    free(w.buf);
    write_snap("member/snap/0000000000000002-0000000000000020.snap", 2, 32, false);
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_int_equal(r.snap_files, 2);
    assert_int_equal(r.snap_broken, 1);
    assert_int_equal(r.snap_index, 20);
    /* an orphan .snap (written, WAL record lost in a crash) is ignored the same way */
    write_snap("member/snap/0000000000000002-0000000000000030.snap", 2, 48, true);
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_int_equal(r.snap_index, 20);
}

/* With the WAL purged down to files after the snapshot, the .snap is the only way in. */
static void test_bad_snap_purged_wal(void **state)
{
    (void)state;
    struct walw w;
    char name[128], p[512];
    build_valid(&w, true, false);
    free(w.buf);
    /* rewrite file 1 so that it carries the snapshot record, then drop file 0 */
    memset(&w, 0, sizeof w);
    w.crc = g_crc0;
    w_file_start(&w, false, MEMBER_ID, CLUSTER_ID);
    w_snapshot(&w, 20, 2);
    for (uint64_t i = 21; i <= 25; i++)
        w_entry(&w, 2, i, 10);
    w_state(&w, 2, 25);
    wal_name(name, sizeof name, 1, 21);
    write_file(name, w.buf, w.len, PREALLOC);
    free(w.buf);
    wal_name(name, sizeof name, 0, 0);
    path_of(p, sizeof p, name);
    assert_int_equal(unlink(p), 0);
    write_snap("member/snap/0000000000000002-0000000000000014.snap", 2, 20, true);
    struct datadir_report r;
    inspect(&r);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_int_equal(r.snap_index, 20);
    write_snap("member/snap/0000000000000002-0000000000000014.snap", 2, 20, false);
    expect_corrupt("snapshot not found");
    inspect(&r);
    assert_int_equal(r.snap_broken, 1);
}

static void test_snap_bytes(void **state)
{
    (void)state;
    uint8_t out[256];
    uint64_t index = 0, term = 0;
    size_t n = snap_bytes(out, 7, 1234567, true);
    assert_int_equal(datadir_snap_check(out, n, &index, &term), 0);
    assert_int_equal(index, 1234567);
    assert_int_equal(term, 7);
    assert_int_equal(datadir_snap_check(out, n, NULL, NULL), 0);
    n = snap_bytes(out, 7, 1234567, false);
    assert_int_equal(datadir_snap_check(out, n, NULL, NULL), -EBADMSG);
    assert_int_equal(datadir_snap_check(out, 0, NULL, NULL), -EBADMSG);
    assert_int_equal(datadir_snap_check((const uint8_t *)"\xff", 1, NULL, NULL), -EBADMSG);

    Walpb__SnapFile s = WALPB__SNAP_FILE__INIT;
    uint8_t data[3] = {1, 2, 3};
    s.has_crc = 1;
    s.has_data = 1;
    s.data.data = data;
    s.data.len = 3;
    s.crc = crc32c_update(0, data, 3); /* right CRC, but data is no raftpb.Snapshot */
    n = walpb__snap_file__pack(&s, out);
    assert_int_equal(datadir_snap_check(out, n, NULL, NULL), -EBADMSG);
    s.data.len = 0; /* empty data: etcd's ErrEmptySnapshot */
    s.crc = 0;
    n = walpb__snap_file__pack(&s, out);
    assert_int_equal(datadir_snap_check(out, n, NULL, NULL), -EBADMSG);
}

static void test_metadata_mismatch(void **state)
{
    (void)state;
    struct walw w;
    char name[128];
    build_valid(&w, true, false);
    w.crc = g_crc0;
    w_file_start(&w, false, MEMBER_ID + 1, CLUSTER_ID);
    wal_name(name, sizeof name, 1, 21);
    write_file(name, w.buf, w.len, PREALLOC);
    free(w.buf);
    expect_corrupt("conflicts");
}

static void test_no_metadata(void **state)
{
    (void)state;
    struct walw w = {0};
    char name[128];
    mk("member");
    mk("member/wal");
    w_record(&w, 4, NULL, 0);
    w_entry(&w, 1, 1, 10);
    wal_name(name, sizeof name, 0, 0);
    write_file(name, w.buf, w.len, PREALLOC);
    free(w.buf);
    expect_corrupt("no metadata record");
}

static void test_db_without_wal(void **state)
{
    (void)state;
    mk("member");
    mk("member/snap");
    write_db(PAGE, 4, false, false);
    expect_corrupt("no WAL");
    struct datadir_report r;
    inspect(&r);
    assert_int_equal(r.db_valid_metas, 2);
}

static void test_snap_without_wal(void **state)
{
    (void)state;
    mk("member");
    mk("member/wal");
    mk("member/snap");
    write_snap("member/snap/0000000000000002-0000000000000014.snap", 2, 20, true);
    expect_corrupt("no WAL");
}

static void test_missing_db(void **state)
{
    (void)state;
    struct walw w;
    struct datadir_report r;
    build_valid(&w, false, false);
    free(w.buf);
    inspect(&r); /* WAL from index 0, no snapshot: etcd replays it into a new db */
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_false(r.has_db);
    write_snap("member/snap/0000000000000002-0000000000000014.snap", 2, 20, true);
    expect_corrupt("db missing");
}

static void test_missing_db_purged_wal(void **state)
{
    (void)state;
    struct walw w;
    char name[128];
    build_valid(&w, false, false);
    free(w.buf);
    wal_name(name, sizeof name, 0, 0);
    char p[512];
    path_of(p, sizeof p, name);
    assert_int_equal(unlink(p), 0);
    expect_corrupt("snapshot not found"); /* no db, no .snap, WAL no longer from index 0 */
}

static void test_seq_gap(void **state)
{
    (void)state;
    struct walw w;
    char from[512], to[512], name[128];
    build_valid(&w, true, false);
    free(w.buf);
    wal_name(name, sizeof name, 1, 21);
    path_of(from, sizeof from, name);
    wal_name(name, sizeof name, 2, 21);
    path_of(to, sizeof to, name);
    assert_int_equal(rename(from, to), 0);
    expect_corrupt("sequence gap");
}

static void test_oversized_record(void **state)
{
    (void)state;
    struct walw w = {0};
    char name[128];
    mk("member");
    mk("member/wal");
    w_file_start(&w, true, MEMBER_ID, CLUSTER_ID);
    uint8_t lw[8] = {0, 0, 0xa0, 0, 0, 0, 0, 0}; /* 10 MiB */
    w_put(&w, lw, 8);
    wal_name(name, sizeof name, 0, 0);
    write_file(name, w.buf, w.len, PREALLOC);
    free(w.buf);
    expect_corrupt("exceeds");
}

static void test_bad_entry_and_type(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int64_t type;
        const char *data;
        size_t len;
        const char *reason;
    } cases[] = {
        {"Index tag without its varint", 2, "\x18", 1, "raft entry"},
        {"Index as bytes: wrong wire type", 2, "\x1a\x00", 2, "raft entry"},
        {"unknown record type", 9, "x", 1, "unexpected record type 9"},
    };
    struct walw w = {0};
    uint32_t crc = 0;
    struct wal_scan scan;
    w_file_start(&w, true, MEMBER_ID, CLUSTER_ID);
    size_t good = w.len;
    uint32_t good_crc = w.crc;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("%s\n", cases[i].name);
        w.len = good;
        w.crc = good_crc;
        w_record(&w, cases[i].type, (const uint8_t *)cases[i].data, cases[i].len);
        memset(&scan, 0, sizeof scan);
        assert_int_equal(datadir_wal_scan(w.buf, w.len, true, &crc, &scan), -EBADMSG);
        assert_non_null(strstr(scan.reason, cases[i].reason));
        assert_int_equal(scan.end_offset, good);
    }
    free(w.buf);
}

static void test_scan_counts(void **state)
{
    (void)state;
    struct walw w = {0};
    uint32_t crc = 0;
    struct wal_scan scan;
    w_file_start(&w, true, MEMBER_ID, CLUSTER_ID);
    w_entry(&w, 3, 1000000000000ull, 0);
    memset(&scan, 0, sizeof scan);
    assert_int_equal(datadir_wal_scan(w.buf, w.len, true, &crc, &scan), 0);
    assert_int_equal(scan.records, 4);
    assert_int_equal(scan.end_offset, w.len);
    assert_true(scan.last_index == 1000000000000ull);
    assert_true(scan.have_ids && scan.member_id == MEMBER_ID && scan.cluster_id == CLUSTER_ID);
    assert_int_equal(crc, w.crc);
    /* empty buffer and an all-zero buffer are clean and empty */
    assert_int_equal(datadir_wal_scan(w.buf, 0, false, &crc, &scan), 0);
    uint8_t z[64] = {0};
    assert_int_equal(datadir_wal_scan(z, sizeof z, false, &crc, &scan), 0);
    assert_int_equal(scan.end_offset, 0);
    free(w.buf);
}

static void test_wal_locked(void **state)
{
    (void)state;
    struct walw w;
    char name[128], p[512];
    build_valid(&w, true, false);
    free(w.buf);
    assert_int_equal(datadir_wal_locked(g_dir), 0);
    wal_name(name, sizeof name, 1, 21);
    path_of(p, sizeof p, name);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0); /* what etcd does */
    assert_int_equal(datadir_wal_locked(g_dir), 1);
    struct datadir_report r;
    inspect(&r); /* inspection still reads a locked WAL */
    assert_int_equal(r.verdict, DATADIR_VALID);
    close(fd);
    assert_int_equal(datadir_wal_locked(g_dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_bbolt_meta_bytes),
        cmocka_unit_test(test_snap_bytes),
        cmocka_unit_test(test_bad_entry_and_type),
        cmocka_unit_test(test_scan_counts),
        cmocka_unit_test_setup_teardown(test_empty_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_metas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_page_size_from_meta0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_last_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_in_earlier_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_first_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crc_chain_across_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_snap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_snap_purged_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_without_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snap_without_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_db_purged_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_locked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
