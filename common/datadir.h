/* datadir.h - read-only inspection of an etcd data dir: who it belongs to and whether it is
 * intact.
 *
 * Reads the member/wal/ .wal files (record framing, the running CRC-32C chain across files, the
 * metadata record with member and cluster ID), member/snap/db (both bbolt meta pages) and
 * the member/snap/ .snap files (CRC of each). Never writes, never takes locks that etcd would see
 * (except datadir_wal_locked, which only tests them). Facts and formats:
 * ../shared/etcd-facts.md "Data dir". The byte-level readers are exposed for the fuzzers. */
#ifndef ER_DATADIR_H
#define ER_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum datadir_verdict {
    DATADIR_EMPTY,   /* absent, empty, or no member/ dir: nothing to lose */
    DATADIR_VALID,   /* WAL, db and snaps check out; member_id/cluster_id set */
    DATADIR_CORRUPT, /* something is wrong; reason says what; ids set if they could be read */
};

struct datadir_report {
    enum datadir_verdict verdict;
    char reason[256]; /* CORRUPT: what failed, with file and offset; else "" */
    bool ids_known;   /* member_id/cluster_id read from a WAL metadata record */
    uint64_t member_id;
    uint64_t cluster_id;
    /* details, for the decision log line */
    bool has_db;
    uint32_t db_page_size;
    uint64_t db_txid;   /* txid of the meta bbolt would use */
    int db_valid_metas; /* 0, 1 or 2 */
    size_t wal_files;
    uint64_t wal_records;
    uint64_t wal_bytes;      /* bytes of record data scanned */
    uint64_t wal_last_index; /* highest raft entry index seen (0 if none) */
    bool wal_torn_tail;      /* the last file ends inside a record (crash during write; etcd
                              * itself repairs this on start). The verdict stays VALID. */
    size_t snap_files;
    size_t snap_broken;  /* .snap files etcd would skip (bad CRC, empty, undecodable) */
    uint64_t snap_index; /* index of the .snap etcd would start from (0: none, WAL from 0) */
    uint64_t took_us;    /* time the inspection took */
    int io_error;        /* errno of a read that failed (EIO: a failing disk, or a mapped file
                          * shrunk under the reader); datadir_inspect then returns it negated */
};

/* Inspect data_dir (e.g. /var/lib/data). Returns 0 with *out filled (any verdict), or a
 * negative errno if the directory could not be read at all for a reason other than absence
 * (e.g. -EACCES, -ENOTDIR), or -EIO if reading a file failed (a read error is not corruption:
 * the bytes may be fine on a healthy disk), with out->reason set.
 *
 * Verdict rules (what etcd 3.4.23 would do on start; each checked against it):
 * - EMPTY: data_dir or member/ absent, or no .wal file, no snap/db and no .snap file (etcd
 *   would bootstrap; 0.tmp and other non-WAL names are ignored as etcd does).
 * - CORRUPT when etcd would fail or lose data: db or .snap files without any WAL (it may be
 *   the last copy); WAL sequence gap; framing error, CRC mismatch or undecodable record
 *   anywhere, or a torn record in a file other than the last; a record of 10 MiB or more;
 *   conflicting or missing metadata, zero IDs; no .snap usable (loadable and matching a WAL
 *   snapshot record at or below the last commit) while the WAL no longer starts at index 0;
 *   db with no valid meta page, shorter than two pages or than its high-water page; db
 *   missing while etcd would start from a .snap (it cannot rebuild the db then).
 * - VALID otherwise, including: a torn tail in the last WAL file (wal_torn_tail; etcd
 *   repairs it); one bad meta page; broken or orphan .snap files that etcd skips
 *   (snap_broken); db missing with no usable .snap and the WAL from index 0 (etcd replays
 *   the WAL into a new db; has_db false). */
int datadir_inspect(const char *data_dir, struct datadir_report *out);

/* 1 if some process holds etcd's lock on a WAL file of data_dir (etcd is running on it),
 * 0 if none, negative errno on error. Uses the same fcntl lock type etcd takes. */
int datadir_wal_locked(const char *data_dir);

/* ---- byte-level readers (fuzz targets) --------------------------------------------------- */

struct bbolt_meta {
    uint32_t magic, version, page_size, flags;
    uint64_t root_pgid, freelist_pgid, high_water_pgid, txid, checksum;
    bool valid; /* magic, version and checksum hold */
};

/* Check one meta page at buf (len >= 80 bytes needed). Returns 0 if valid, -EINVAL if not
 * (meta still filled with what was read), -EMSGSIZE if len is too short. */
int datadir_bbolt_meta(const uint8_t *buf, size_t len, struct bbolt_meta *meta);

/* Scan WAL bytes of one file (buf = the file from offset 0, so sector math matches etcd's
 * torn-write check). *crc is the running CRC in/out; first_file ignores its input (etcd's
 * decoder starts at 0 and takes the first file's crc record as given). Stops at the end of
 * data (a zero length word or end of buffer). Zero *scan before the first file and pass the
 * same one for the following files: counts accumulate and every metadata record is checked
 * against the first one seen (same IDs and same bytes, like etcd's ErrMetadataConflict).
 * end_offset and reason are per call. Returns 0 if clean, 1 if the buffer ends inside a
 * record or the last record is a torn write (etcd's isTornEntry: CRC or decoding fails and
 * some 512-byte sector of it is all zero; reason says where), or -EBADMSG with reason filled
 * (framing, CRC mismatch, bad record type, undecodable payload, metadata mismatch). Whether
 * a torn record is acceptable (last file only) is the caller's call. */
struct wal_scan {
    uint64_t records, bytes, last_index;
    bool have_ids;
    uint64_t member_id, cluster_id;
    uint32_t meta_crc; /* CRC-32C and length of the first metadata record's bytes */
    size_t meta_len;
    uint64_t commit; /* commit of the last HardState record (etcd filters snapshots by it) */
    bool zero_snap;  /* a snapshot record {index 0, term 0} was seen (wal.Create writes it) */
    /* optional: called for every snapshot record (etcd matches .snap files against them) */
    void (*on_snapshot)(void *arg, uint64_t index, uint64_t term);
    void *arg;
    size_t end_offset; /* where the data ends (or the offending record starts) */
    char reason[160];
};
int datadir_wal_scan(const uint8_t *buf, size_t len, bool first_file, uint32_t *crc,
                     struct wal_scan *scan);

/* Check a .snap file's bytes the way etcd's snap.Read does: snappb.snapshot with a non-zero
 * CRC-32C over non-empty data that holds a decodable raftpb.Snapshot. Returns 0 and its
 * metadata index and term (either pointer may be NULL), or -EBADMSG. */
int datadir_snap_check(const uint8_t *buf, size_t len, uint64_t *index, uint64_t *term);

/* CRC-32C (Castagnoli), continuing from crc (0 to start), as etcd's WAL uses it. */
uint32_t datadir_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

#endif
