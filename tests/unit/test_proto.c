/* test_proto.c - proto.c against known wire bytes (etcd's field numbers, written out by hand
 * below), unknown-field tolerance, the decode bounds, allocation failure on every path, and the
 * snapshot stream checker fed synthetic streams. No network: etcd.c's calls are covered by
 * tests/integration/test_etcd.c against a real cluster. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "array.h"
#include "etcd.pb-c.h"
#include "proto.h"

/* Allocation failures, injected at link time: the Makefile links this test with
 * -Wl,--wrap=malloc,--wrap=calloc (TEST_LDFLAGS_proto), so every malloc/calloc of the code
 * under test (proto.c's allocator, the decode allocator, etcd.c) comes here first. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

/* Countdown to an injected failure; per thread so nothing else is disturbed. */
static _Thread_local long fail_countdown;

/* Make the nth allocation (1 = the next one) of this thread fail; 0 turns it off. */
static void fail_nth_alloc(long nth)
{
    fail_countdown = nth > 0 ? nth : 0;
}

static bool injected_failure(void)
{
    if (fail_countdown <= 0)
        return false;
    return --fail_countdown == 0;
}

void *__wrap_malloc(size_t n)
{
    return injected_failure() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return injected_failure() ? NULL : __real_calloc(n, size);
}

/* ---- known bytes -------------------------------------------------------------------------
 * Tags: (field << 3) | wire type; 0 = varint, 2 = length-delimited. */

#define URL0 "https://127.0.0.1:2380" /* 22 bytes = 0x16 */
#define CURL0 "https://127.0.0.1:2379"
#define URL1 "https://127.0.0.1:2381"

/* 0x8e9e05c52164694d as a varint, 10 bytes */
#define BIG_ID 0x8e9e05c52164694dULL
#define BIG_ID_VARINT "\xcd\xd2\x91\x8b\xd2\xb8\x81\xcf\x8e\x01"

/* ResponseHeader{cluster_id 1: 0xcdef, member_id 2: BIG_ID, revision 3: 42, raft_term 4: 3},
 * 19 bytes */
#define HEADER_BYTES                                                                               \
    "\x08\xef\x9b\x03"                                                                             \
    "\x10" BIG_ID_VARINT "\x18\x2a"                                                                \
    "\x20\x03"

/* Member{ID 1: BIG_ID, name 2: "etcd-0", peerURLs 3: [URL0], clientURLs 4: [CURL0]}, 67 bytes */
#define MEMBER0_BYTES                                                                              \
    "\x08" BIG_ID_VARINT "\x12\x06"                                                                \
    "etcd-0"                                                                                       \
    "\x1a\x16" URL0 "\x22\x16" CURL0
/* Member{ID 1: 2, peerURLs 3: [URL1], isLearner 5: true}: never started, so no name and no
 * client URLs; 28 bytes */
#define MEMBER1_BYTES                                                                              \
    "\x08\x02"                                                                                     \
    "\x1a\x16" URL1 "\x28\x01"

/* MemberListResponse{header 1, members 2: [MEMBER0, MEMBER1]} */
static const uint8_t MEMBER_LIST_RESP[] =
    "\x0a\x13" HEADER_BYTES "\x12\x43" MEMBER0_BYTES "\x12\x1c" MEMBER1_BYTES;

/* MemberAddRequest{peerURLs 1: [URL0], isLearner 2: true} */
static const uint8_t MEMBER_ADD_REQ[] = "\x0a\x16" URL0 "\x10\x01";

/* MemberAddResponse{header 1, member 2: MEMBER1, members 3: [MEMBER0, MEMBER1]} */
static const uint8_t MEMBER_ADD_RESP[] = "\x0a\x13" HEADER_BYTES "\x12\x1c" MEMBER1_BYTES
                                         "\x1a\x43" MEMBER0_BYTES "\x1a\x1c" MEMBER1_BYTES;

/* StatusResponse{header 1, version 2: "3.4.23", dbSize 3: 20480, leader 4: BIG_ID,
 * raftIndex 5: 9, raftTerm 6: 3, raftAppliedIndex 7: 9, errors 8: ["NOSPACE"],
 * dbSizeInUse 9: 16384} then fields this project does not declare: 11 string "3.6.0",
 * 12 varint 8 GiB, 99 fixed64, 100 fixed32; then isLearner 10: true (after the unknowns, to
 * show decoding goes on past them). */
static const uint8_t STATUS_RESP[] = "\x0a\x13" HEADER_BYTES "\x12\x06"
                                     "3.4.23"
                                     "\x18\x80\xa0\x01"
                                     "\x20" BIG_ID_VARINT "\x28\x09"
                                     "\x30\x03"
                                     "\x38\x09"
                                     "\x42\x07"
                                     "NOSPACE"
                                     "\x48\x80\x80\x01"
                                     "\x5a\x05"
                                     "3.6.0"
                                     "\x60\x80\x80\x80\x80\x20"
                                     "\x99\x06\x01\x01\x01\x01\x01\x01\x01\x01"
                                     "\xa5\x06\x02\x02\x02\x02"
                                     "\x50\x01";

/* AlarmResponse{header 1, alarms 2: [{memberID 1: BIG_ID, alarm 2: NOSPACE},
 *                                   {memberID 1: 2, alarm 2: 7 (unknown to us)}]} */
static const uint8_t ALARM_RESP[] = "\x0a\x13" HEADER_BYTES "\x12\x0d\x08" BIG_ID_VARINT "\x10\x01"
                                    "\x12\x04\x08\x02\x10\x07";

/* RangeResponse{header 1, count 4: 300} */
static const uint8_t RANGE_RESP[] = "\x0a\x13" HEADER_BYTES "\x20\xac\x02";

#define KB(a) (a), (sizeof(a) - 1) /* string literals carry a trailing NUL */

static void check_header(const struct etcd_header *h)
{
    assert_int_equal(h->cluster_id, 0xcdef);
    assert_true(h->member_id == BIG_ID);
    assert_int_equal(h->revision, 42);
    assert_int_equal(h->raft_term, 3);
}

static void check_member0(const struct etcd_member *m)
{
    assert_true(m->id == BIG_ID);
    assert_string_equal(m->name, "etcd-0");
    assert_int_equal(m->n_peer_urls, 1);
    assert_string_equal(m->peer_urls[0], URL0);
    assert_int_equal(m->n_client_urls, 1);
    assert_string_equal(m->client_urls[0], CURL0);
    assert_false(m->is_learner);
}

static void check_member1(const struct etcd_member *m)
{
    assert_int_equal(m->id, 2);
    assert_non_null(m->name); /* "" rather than NULL: callers print it */
    assert_string_equal(m->name, "");
    assert_int_equal(m->n_peer_urls, 1);
    assert_string_equal(m->peer_urls[0], URL1);
    assert_int_equal(m->n_client_urls, 0);
    assert_null(m->client_urls);
    assert_true(m->is_learner);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    assert_int_equal(got_len, want_len);
    if (want_len)
        assert_memory_equal(got, want, want_len);
}

/* ---- requests -------------------------------------------------------------------------- */

static void test_encode_member_add(void **state)
{
    (void)state;
    const char *urls[] = {URL0};
    uint8_t *out;
    size_t len;
    assert_int_equal(proto_encode_member_add(urls, 1, true, &out, &len), 0);
    assert_bytes(out, len, KB(MEMBER_ADD_REQ));
    free(out);

    /* a voter: isLearner false is the default and not on the wire */
    assert_int_equal(proto_encode_member_add(urls, 1, false, &out, &len), 0);
    assert_bytes(out, len, MEMBER_ADD_REQ, sizeof(MEMBER_ADD_REQ) - 1 - 2);
    free(out);

    const char *bad[] = {URL0, NULL};
    assert_int_equal(proto_encode_member_add(bad, 2, true, &out, &len), -EINVAL);
    assert_null(out);
    assert_int_equal(proto_encode_member_add(urls, 0, true, &out, &len), -EINVAL);
    assert_int_equal(proto_encode_member_add(urls, CONFIG_MAX_LIST + 1, true, &out, &len), -EINVAL);
}

static void test_encode_ids(void **state)
{
    (void)state;
    static const uint8_t want[] = "\x08" BIG_ID_VARINT; /* {ID 1: BIG_ID} */
    uint8_t *out;
    size_t len;

    assert_int_equal(proto_encode_member_remove(BIG_ID, &out, &len), 0);
    assert_bytes(out, len, KB(want));
    free(out);
    assert_int_equal(proto_encode_member_promote(BIG_ID, &out, &len), 0);
    assert_bytes(out, len, KB(want));
    free(out);
}

static void test_encode_empty_requests(void **state)
{
    (void)state;
    uint8_t *out;
    size_t len;

    /* MemberList (3.4: empty), Status, Snapshot, and Alarm{GET 0, memberID 0, NONE 0} whose
     * fields are all proto3 defaults: zero bytes on the wire */
    assert_int_equal(proto_encode_member_list(&out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(proto_encode_status(&out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(proto_encode_snapshot(&out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(proto_encode_alarm_get(&out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
}

static void test_encode_range_put(void **state)
{
    (void)state;
    /* RangeRequest{key 1: "health", serializable 7: true, count_only 9: true} */
    static const uint8_t range[] = "\x0a\x06"
                                   "health"
                                   "\x38\x01\x48\x01";
    /* PutRequest{key 1: "foo", value 2: "bar\0"} */
    static const uint8_t put[] = "\x0a\x03"
                                 "foo"
                                 "\x12\x04"
                                 "bar\0";
    uint8_t *out;
    size_t len;

    assert_int_equal(proto_encode_range_serializable("health", &out, &len), 0);
    assert_bytes(out, len, KB(range));
    free(out);
    assert_int_equal(proto_encode_put("foo", (const uint8_t *)"bar", 4, &out, &len), 0);
    assert_bytes(out, len, KB(put));
    free(out);
    assert_int_equal(proto_encode_range_serializable(NULL, &out, &len), -EINVAL);
    assert_int_equal(proto_encode_put("k", NULL, 1, &out, &len), -EINVAL);
    /* over etcd's request limit: refused locally */
    uint8_t *big = calloc(1, ETCD_MAX_REQUEST);
    assert_non_null(big);
    assert_int_equal(proto_encode_put("k", big, ETCD_MAX_REQUEST, &out, &len), -EINVAL);
    assert_null(out);
    free(big);
}

/* ---- responses ------------------------------------------------------------------------- */

static void test_decode_member_list(void **state)
{
    (void)state;
    struct etcd_member_list l;

    assert_int_equal(proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, KB(MEMBER_LIST_RESP), &l), 0);
    check_header(&l.header);
    assert_int_equal(l.n_members, 2);
    check_member0(&l.members[0]);
    check_member1(&l.members[1]);
    proto_member_list_free(&l);
    assert_null(l.members);
    assert_int_equal(l.n_members, 0);

    /* Remove and Promote responses have the same fields */
    assert_int_equal(proto_decode_members(PROTO_MEMBER_PROMOTE_RESPONSE, KB(MEMBER_LIST_RESP), &l),
                     0);
    assert_int_equal(l.n_members, 2);
    check_member1(&l.members[1]);
    proto_member_list_free(&l);
    assert_int_equal(proto_decode_members(PROTO_MEMBER_REMOVE_RESPONSE, KB(MEMBER_LIST_RESP), &l),
                     0);
    assert_int_equal(l.n_members, 2);
    proto_member_list_free(&l);
}

static void test_decode_member_add(void **state)
{
    (void)state;
    struct etcd_member added;
    struct etcd_member_list l;

    assert_int_equal(proto_decode_member_add(KB(MEMBER_ADD_RESP), &added, &l), 0);
    check_member1(&added);
    check_header(&l.header);
    assert_int_equal(l.n_members, 2);
    check_member0(&l.members[0]);
    check_member1(&l.members[1]);
    proto_member_free(&added);
    proto_member_list_free(&l);

    assert_int_equal(proto_decode_member_add(KB(MEMBER_ADD_RESP), &added, NULL), 0);
    check_member1(&added);
    proto_member_free(&added);

    /* without field 2 the new member's ID is unknown: refused */
    static const uint8_t no_member[] = "\x0a\x13" HEADER_BYTES;
    assert_int_equal(proto_decode_member_add(KB(no_member), &added, &l), -EBADMSG);
    assert_null(added.name);
    assert_int_equal(l.n_members, 0);
}

static void test_decode_status_unknown_fields(void **state)
{
    (void)state;
    struct etcd_status s;

    assert_int_equal(proto_decode_status(KB(STATUS_RESP), &s), 0);
    check_header(&s.header);
    assert_string_equal(s.version, "3.4.23");
    assert_int_equal(s.db_size, 20480);
    assert_true(s.leader == BIG_ID);
    assert_int_equal(s.raft_index, 9);
    assert_int_equal(s.raft_term, 3);
    assert_int_equal(s.raft_applied_index, 9);
    assert_int_equal(s.n_errors, 1);
    assert_string_equal(s.errors[0], "NOSPACE");
    assert_int_equal(s.db_size_in_use, 16384);
    assert_true(s.is_learner);
    proto_status_free(&s);
    assert_null(s.errors);

    /* a version longer than the struct's buffer is cut, not refused */
    static const uint8_t long_version[] = "\x12\x29"
                                          "3.6.0-alpha.0+git.0123456789abcdef0123456";
    assert_int_equal(proto_decode_status(KB(long_version), &s), 0);
    assert_int_equal(strlen(s.version), sizeof(s.version) - 1);
    assert_memory_equal(s.version, "3.6.0-alpha.0+git", 17);
    proto_status_free(&s);
}

static void test_decode_alarms_range_put(void **state)
{
    (void)state;
    struct etcd_header h;
    struct etcd_alarm *a;
    size_t n;
    int64_t count;

    assert_int_equal(proto_decode_alarms(KB(ALARM_RESP), &h, &a, &n), 0);
    check_header(&h);
    assert_int_equal(n, 2);
    assert_true(a[0].member_id == BIG_ID);
    assert_int_equal(a[0].type, ETCD_ALARM_NOSPACE);
    assert_int_equal(a[1].member_id, 2);
    assert_int_equal(a[1].type, 7);
    free(a);

    /* the healthy answer: only a header, no alarms */
    assert_int_equal(proto_decode_alarms(ALARM_RESP, 2 + 19, &h, &a, &n), 0);
    assert_null(a);
    assert_int_equal(n, 0);

    assert_int_equal(proto_decode_range(KB(RANGE_RESP), &h, &count), 0);
    check_header(&h);
    assert_int_equal(count, 300);
    assert_int_equal(proto_decode_range(KB(RANGE_RESP), NULL, NULL), 0);

    assert_int_equal(proto_decode_put(RANGE_RESP, 2 + 19, &h), 0);
    check_header(&h);
    /* the empty message is a valid response with default fields */
    assert_int_equal(proto_decode_put(NULL, 0, &h), 0);
    assert_int_equal(h.cluster_id, 0);
}

static void test_decode_malformed(void **state)
{
    (void)state;
    struct etcd_member_list l;
    struct etcd_status s;
    struct etcd_member m;

    /* every proper prefix of a message cut inside a field is malformed, and leaves nothing */
    for (size_t cut = 1; cut < sizeof(MEMBER_LIST_RESP) - 1; cut++) {
        int rc = proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, MEMBER_LIST_RESP, cut, &l);
        if (rc == 0) { /* cut on a field boundary: a shorter but valid list */
            proto_member_list_free(&l);
            continue;
        }
        assert_int_equal(rc, -EBADMSG);
        assert_null(l.members);
        assert_int_equal(l.n_members, 0);
    }
    /* wrong wire type for header (varint instead of length-delimited) */
    static const uint8_t wrong_type[] = "\x08\x01";
    assert_int_equal(proto_decode_status(KB(wrong_type), &s), -EBADMSG);
    assert_int_equal(proto_decode_member_add(KB(wrong_type), &m, &l), -EBADMSG);
    /* a length running past the end */
    static const uint8_t overrun[] = "\x12\x7f"
                                     "abc";
    assert_int_equal(proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, KB(overrun), &l), -EBADMSG);
    /* field number 0 is invalid */
    static const uint8_t field0[] = "\x00\x01";
    assert_int_equal(proto_decode_status(KB(field0), &s), -EBADMSG);
}

/* A list of a million empty members is 2 MB on the wire but would take ~80 MB unpacked:
 * refused by the decode bound as -ENOMEM, nothing leaks. */
static void test_decode_bound(void **state)
{
    (void)state;
    const size_t n = 1000000;
    uint8_t *buf = malloc(2 * n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = 0x12; /* members 2, length-delimited */
        buf[2 * i + 1] = 0x00;
    }
    struct etcd_member_list l;
    assert_int_equal(proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, buf, 2 * n, &l), -ENOMEM);
    assert_null(l.members);
    /* the same shape in a size that fits decodes fine */
    assert_int_equal(proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, buf, 2000, &l), 0);
    assert_int_equal(l.n_members, 1000);
    assert_string_equal(l.members[999].name, "");
    proto_member_list_free(&l);
    free(buf);
}

/* Make each allocation fail in turn: every decoder returns -ENOMEM with empty outputs (and
 * ASan/valgrind see no leak) until the run needs no more allocations than n. */
static void test_alloc_failures(void **state)
{
    (void)state;
    int done = 0, failed = 0; /* bit per call: succeeded / failed with ENOMEM at least once */
    for (long nth = 1; done != 0x3f && nth < 200; nth++) {
        struct etcd_member_list l;
        struct etcd_member m;
        struct etcd_status s;
        struct etcd_alarm *a;
        size_t na;
        uint8_t *out;
        size_t len;
        const char *urls[] = {URL0};
        int rc;

        fail_nth_alloc(nth);
        rc = proto_decode_members(PROTO_MEMBER_LIST_RESPONSE, KB(MEMBER_LIST_RESP), &l);
        if (rc == 0) {
            proto_member_list_free(&l);
            done |= 1;
        } else {
            failed |= 1;
            assert_int_equal(rc, -ENOMEM);
            assert_null(l.members);
        }
        fail_nth_alloc(nth);
        rc = proto_decode_member_add(KB(MEMBER_ADD_RESP), &m, &l);
        if (rc == 0) {
            proto_member_free(&m);
            proto_member_list_free(&l);
            done |= 2;
        } else {
            failed |= 2;
            assert_int_equal(rc, -ENOMEM);
            assert_null(m.name);
            assert_null(l.members);
        }
        fail_nth_alloc(nth);
        rc = proto_decode_status(KB(STATUS_RESP), &s);
        if (rc == 0) {
            proto_status_free(&s);
            done |= 4;
        } else {
            failed |= 4;
            assert_int_equal(rc, -ENOMEM);
            assert_null(s.errors);
        }
        fail_nth_alloc(nth);
        rc = proto_decode_alarms(KB(ALARM_RESP), NULL, &a, &na);
        if (rc == 0) {
            free(a);
            done |= 8;
        } else {
            failed |= 8;
            assert_int_equal(rc, -ENOMEM);
        }
        fail_nth_alloc(nth);
        rc = proto_encode_member_add(urls, 1, true, &out, &len);
        if (rc == 0) {
            free(out);
            done |= 16;
        } else {
            failed |= 16;
            assert_int_equal(rc, -ENOMEM);
        }
        fail_nth_alloc(nth);
        rc = proto_decode_range(KB(RANGE_RESP), NULL, NULL);
        if (rc == 0) {
            done |= 32;
        } else {
            failed |= 32;
            assert_int_equal(rc, -ENOMEM);
        }
    }
    fail_nth_alloc(0);
    assert_int_equal(done, 0x3f);
    assert_int_equal(failed, 0x3f); /* the injection reached every call */
}

/* ---- snapshot stream ------------------------------------------------------------------- */

#define BLOB 32768u

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            p[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

/* SnapshotResponse{remaining_bytes 2, blob 3}, written by hand; returns its length */
static size_t snap_msg(uint8_t *out, uint64_t remaining, const uint8_t *blob, size_t len)
{
    size_t n = 0;
    if (remaining) {
        out[n++] = 0x10;
        n += put_varint(out + n, remaining);
    }
    if (len) {
        out[n++] = 0x1a;
        n += put_varint(out + n, len);
        memcpy(out + n, blob, len);
        n += len;
    }
    return n;
}

struct sink {
    uint8_t *data;
    size_t len, cap;
    uint64_t total;
    int calls;
    int cancel_at; /* call number that returns non-zero; 0 never */
};

static int sink_fn(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    struct sink *k = arg;
    k->calls++;
    k->total = total;
    assert_true(k->len + len <= k->cap);
    memcpy(k->data + k->len, blob, len);
    k->len += len;
    return k->calls == k->cancel_at;
}

enum stream_fault {
    GOOD,
    VERSION_FIRST, /* good too: a first message with only a version and remaining_bytes */
    BAD_DIGEST,
    SHORT,
    NO_DIGEST,
    EXTRA_AFTER_DIGEST,
    LONG_DIGEST,
    OVERLONG_BLOB,
    BAD_REMAINING
};

struct feed_result {
    int feed_rc;   /* first non-zero feed result */
    int finish_rc; /* finish result if the stream "ended OK" */
    char err[GRPC_MAX_STATUS_MESSAGE];
    struct sink sink;
    uint8_t digest[32];
    uint8_t want_digest[32];
};

/* Streams `size` bytes of a pattern as etcd does (BLOB-sized pieces, then the digest),
 * with one fault injected. */
static void run_stream(size_t size, enum stream_fault fault, int cancel_at, struct feed_result *r)
{
    uint8_t *db = calloc(1, size + 1); /* +1: OVERLONG_BLOB sends one byte more */
    uint8_t *msg = malloc(BLOB + 64);
    struct proto_snapshot s;
    unsigned dlen = 0;

    assert_non_null(db);
    assert_non_null(msg);
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < size; i++)
        db[i] = (uint8_t)(i * 7 + (i >> 9));
    assert_int_equal(EVP_Digest(db, size, r->want_digest, &dlen, EVP_sha256(), NULL), 1);
    r->sink.cap = size + 64;
    r->sink.data = malloc(r->sink.cap);
    r->sink.cancel_at = cancel_at;
    assert_int_equal(proto_snapshot_init(&s, sink_fn, &r->sink), 0);

    if (fault == VERSION_FIRST) {
        /* SnapshotResponse{remaining_bytes 2: size, version 4: "3.6.0"}, no blob */
        size_t n = snap_msg(msg, size, NULL, 0);
        memcpy(msg + n,
               "\x22\x05"
               "3.6.0",
               7);
        assert_int_equal(proto_snapshot_feed(&s, msg, n + 7), 0);
    }
    size_t sent = 0;
    size_t stop = fault == SHORT ? size / 2 : size;
    int rc = 0;
    while (rc == 0 && sent < stop) {
        size_t n = size - sent < BLOB ? size - sent : BLOB;
        uint64_t remaining = size - sent - n;
        if (fault == OVERLONG_BLOB && sent + n == size)
            n += 1; /* one byte more than announced, remaining still 0 */
        if (fault == BAD_REMAINING && sent > 0)
            remaining += 1;
        size_t len = snap_msg(msg, remaining, db + sent, n);
        sent += n;
        rc = proto_snapshot_feed(&s, msg, len);
    }
    if (rc == 0 && fault != NO_DIGEST && fault != SHORT) {
        uint8_t d[33];
        memcpy(d, r->want_digest, 32);
        d[32] = 0;
        if (fault == BAD_DIGEST)
            d[31] ^= 1;
        rc = proto_snapshot_feed(&s, msg, snap_msg(msg, 0, d, fault == LONG_DIGEST ? 33 : 32));
        if (rc == 0 && fault == EXTRA_AFTER_DIGEST)
            rc = proto_snapshot_feed(&s, msg, snap_msg(msg, 0, db, 16));
    }
    r->feed_rc = rc;
    r->finish_rc = rc ? rc : proto_snapshot_finish(&s, r->digest);
    snprintf(r->err, sizeof(r->err), "%s", s.err);
    assert_int_equal(memcmp(r->sink.data, db, r->sink.len), 0); /* data in order */
    proto_snapshot_free(&s);
    free(db);
    free(msg);
}

static void test_snapshot_good(void **state)
{
    (void)state;
    struct feed_result r;
    /* not a multiple of the blob size, an exact multiple (its last data message has
     * remaining_bytes 0 like the digest), and a single small blob */
    const size_t sizes[] = {3 * BLOB + 1696, 4 * BLOB, 4096};
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        run_stream(sizes[i], GOOD, 0, &r);
        assert_int_equal(r.feed_rc, 0);
        assert_int_equal(r.finish_rc, GRPC_OK);
        assert_int_equal(r.sink.len, sizes[i]);
        assert_int_equal(r.sink.total, sizes[i]);
        assert_int_equal(r.sink.calls, (int)((sizes[i] + BLOB - 1) / BLOB));
        assert_memory_equal(r.digest, r.want_digest, 32);
        free(r.sink.data);
    }
    run_stream(2 * BLOB + 5, VERSION_FIRST, 0, &r);
    assert_int_equal(r.finish_rc, GRPC_OK);
    assert_int_equal(r.sink.len, 2 * BLOB + 5);
    assert_memory_equal(r.digest, r.want_digest, 32);
    free(r.sink.data);
}

static void expect_fault(size_t size, enum stream_fault fault, int feed_rc, const char *needle)
{
    struct feed_result r;
    run_stream(size, fault, 0, &r);
    assert_int_equal(r.feed_rc, feed_rc);
    assert_int_equal(r.finish_rc, GRPC_DATA_LOSS);
    if (!strstr(r.err, needle))
        fail_msg("error \"%s\" lacks \"%s\"", r.err, needle);
    uint8_t zero[32] = {0};
    assert_memory_equal(r.digest, zero, 32); /* nothing handed out on failure */
    free(r.sink.data);
}

static void test_snapshot_faults(void **state)
{
    (void)state;
    const size_t size = 3 * BLOB + 1696;
    expect_fault(size, BAD_DIGEST, 0, "sha256 mismatch");
    expect_fault(size, SHORT, 0, "short stream");
    expect_fault(size, NO_DIGEST, 0, "missing sha256");
    expect_fault(size, EXTRA_AFTER_DIGEST, GRPC_DATA_LOSS, "after the sha256");
    expect_fault(size, LONG_DIGEST, GRPC_DATA_LOSS, "beyond the announced");
    expect_fault(size, OVERLONG_BLOB, GRPC_DATA_LOSS, "longer than the announced");
    expect_fault(size, BAD_REMAINING, GRPC_DATA_LOSS, "remaining_bytes");
}

static void test_snapshot_cancel_and_garbage(void **state)
{
    (void)state;
    struct feed_result r;
    run_stream(3 * BLOB, GOOD, 2, &r);
    assert_int_equal(r.feed_rc, GRPC_CANCELLED);
    assert_int_equal(r.sink.calls, 2);
    assert_non_null(strstr(r.err, "cancelled"));
    free(r.sink.data);

    struct proto_snapshot s;
    static const uint8_t junk[] = "\x1a\x7f"
                                  "short";
    assert_int_equal(proto_snapshot_init(&s, NULL, NULL), 0);
    assert_int_equal(proto_snapshot_feed(&s, KB(junk)), GRPC_INTERNAL);
    assert_int_equal(proto_snapshot_finish(&s, NULL), GRPC_INTERNAL); /* sticky */
    proto_snapshot_free(&s);

    /* a stream that ends before any message */
    assert_int_equal(proto_snapshot_init(&s, NULL, NULL), 0);
    assert_int_equal(proto_snapshot_finish(&s, NULL), GRPC_DATA_LOSS);
    assert_non_null(strstr(s.err, "empty stream"));
    proto_snapshot_free(&s);
}

/* ---- etcd.c's local paths (no server needed) ------------------------------------------ */

static void test_etcd_local_errors(void **state)
{
    (void)state;
    struct grpc_status st;
    struct etcd_member added;
    struct etcd_member_list l;
    char hex[17];

    /* bad arguments are refused before any I/O, with a clear status and empty outputs */
    assert_int_equal(etcd_member_add(NULL, NULL, 0, true, 1000, &added, &l, &st),
                     GRPC_INVALID_ARGUMENT);
    assert_true(st.transport);
    assert_non_null(strstr(st.message, "MemberAdd"));
    assert_null(added.name);
    assert_int_equal(l.n_members, 0);
    const char *urls[] = {URL0};
    assert_int_equal(etcd_member_add(NULL, urls, 1, true, 1000, NULL, NULL, &st),
                     GRPC_INVALID_ARGUMENT);
    assert_int_equal(etcd_member_list(NULL, 1000, &l, &st), GRPC_INVALID_ARGUMENT);
    assert_int_equal(etcd_range_serializable(NULL, NULL, 1000, NULL, NULL, &st),
                     GRPC_INVALID_ARGUMENT);
    uint8_t digest[32];
    memset(digest, 0xaa, sizeof(digest));
    assert_int_equal(etcd_snapshot(NULL, 0, 0, NULL, NULL, digest, &st), GRPC_INVALID_ARGUMENT);
    assert_int_equal(digest[0], 0);
    /* an injected allocation failure while encoding: RESOURCE_EXHAUSTED */
    fail_nth_alloc(1);
    assert_int_equal(etcd_member_add(NULL, urls, 1, true, 1000, &added, NULL, &st),
                     GRPC_RESOURCE_EXHAUSTED);
    fail_nth_alloc(0);

    assert_string_equal(etcd_id_hex(BIG_ID, hex), "8e9e05c52164694d");
    assert_string_equal(etcd_id_hex(0x2a, hex), "2a");
    assert_string_equal(etcd_id_hex(0, hex), "0");
    assert_string_equal(etcd_alarm_name(ETCD_ALARM_NONE), "NONE");
    assert_string_equal(etcd_alarm_name(ETCD_ALARM_CORRUPT), "CORRUPT");
    assert_string_equal(etcd_alarm_name(-1), "UNKNOWN");
}

/* A failed assertion skips the test's own reset: never let an injected failure leak into
 * the next test. */
static int reset_alloc(void **state)
{
    (void)state;
    fail_nth_alloc(0);
    return 0;
}

/* proto_snapshot_parse (in place) must accept exactly what protobuf-c accepts, with the same
 * fields: packed messages with every field, then random mutations and truncations of them,
 * and random bytes. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void compare_parse(const uint8_t *m, size_t n)
{
    uint64_t rem = 0;
    const uint8_t *blob = NULL;
    size_t blen = 0;
    int rc = proto_snapshot_parse(m, n, &rem, &blob, &blen);
    static const uint8_t empty[1];
    Etcdserverpb__SnapshotResponse *r =
        etcdserverpb__snapshot_response__unpack(NULL, n, n ? m : empty);
    if (!r) {
        assert_int_equal(rc, -EBADMSG);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(rem, r->remaining_bytes);
    assert_int_equal(blen, r->blob.len);
    if (blen)
        assert_memory_equal(blob, r->blob.data, blen);
    etcdserverpb__snapshot_response__free_unpacked(r, NULL);
}

static void test_snapshot_parse_matches_protobuf_c(void **state)
{
    (void)state;
    uint8_t buf[512], mut[512];
    for (int i = 0; i < 20000; i++) {
        Etcdserverpb__SnapshotResponse r;
        Etcdserverpb__ResponseHeader h;
        etcdserverpb__snapshot_response__init(&r); /* the INIT macros cast const away */
        etcdserverpb__response_header__init(&h);
        uint8_t data[64];
        char ver[8] = "3.6.0";
        for (size_t k = 0; k < sizeof data; k++)
            data[k] = (uint8_t)rnd();
        uint64_t x = rnd();
        if (x & 1) {
            h.cluster_id = rnd();
            h.revision = (int64_t)rnd();
            r.header = &h;
        }
        r.remaining_bytes = x & 2 ? rnd() >> (rnd() % 64) : 0;
        if (x & 4) {
            r.blob.data = data;
            r.blob.len = (size_t)(rnd() % sizeof data);
        }
        if (x & 8)
            r.version = ver;
        size_t n = etcdserverpb__snapshot_response__get_packed_size(&r);
        assert_true(n <= sizeof buf);
        etcdserverpb__snapshot_response__pack(&r, buf);
        compare_parse(buf, n);
        /* mutations: flipped bytes, truncation, appended garbage */
        memcpy(mut, buf, n);
        size_t m = n;
        int edits = 1 + (int)(rnd() % 3);
        for (int e = 0; e < edits; e++) {
            switch (rnd() % 3) {
            case 0:
                if (m)
                    mut[rnd() % m] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1:
                if (m)
                    m = (size_t)(rnd() % m);
                break;
            default:
                for (int k = 0; k < 4 && m < sizeof mut; k++)
                    mut[m++] = (uint8_t)rnd();
            }
        }
        compare_parse(mut, m);
        /* random bytes */
        m = (size_t)(rnd() % 24);
        for (size_t k = 0; k < m; k++)
            mut[k] = (uint8_t)rnd();
        compare_parse(mut, m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_encode_member_add, reset_alloc),
        cmocka_unit_test_teardown(test_encode_ids, reset_alloc),
        cmocka_unit_test_teardown(test_encode_empty_requests, reset_alloc),
        cmocka_unit_test_teardown(test_encode_range_put, reset_alloc),
        cmocka_unit_test_teardown(test_decode_member_list, reset_alloc),
        cmocka_unit_test_teardown(test_decode_member_add, reset_alloc),
        cmocka_unit_test_teardown(test_decode_status_unknown_fields, reset_alloc),
        cmocka_unit_test_teardown(test_decode_alarms_range_put, reset_alloc),
        cmocka_unit_test_teardown(test_decode_malformed, reset_alloc),
        cmocka_unit_test_teardown(test_decode_bound, reset_alloc),
        cmocka_unit_test_teardown(test_alloc_failures, reset_alloc),
        cmocka_unit_test_teardown(test_snapshot_good, reset_alloc),
        cmocka_unit_test_teardown(test_snapshot_faults, reset_alloc),
        cmocka_unit_test_teardown(test_snapshot_cancel_and_garbage, reset_alloc),
        cmocka_unit_test_teardown(test_snapshot_parse_matches_protobuf_c, reset_alloc),
        cmocka_unit_test_teardown(test_etcd_local_errors, reset_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
