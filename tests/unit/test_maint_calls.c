/* test_maint_calls.c - the maintenance additions below the agent: the quota parser over etcd's
 * /metrics text, the encoders of the maintenance requests (checked against protobuf-c's own
 * decoding of the generated messages), the HashKV and header-only decoders, and the
 * /members text table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "cache.h"
#include "etcd.h"
#include "etcd.pb-c.h"
#include "maint_table.h"
#include "proto.h"

static void test_quota(void **state)
{
    (void)state;
    int64_t q;
    const char *t = "# HELP etcd_server_quota_backend_bytes Current backend storage quota size "
                    "in bytes.\n# TYPE etcd_server_quota_backend_bytes gauge\n"
                    "etcd_server_quota_backend_bytes_other 5\n"
                    "etcd_server_quota_backend_bytes 2.147483648e+09\n";
    assert_int_equal(etcd_metrics_quota(t, strlen(t), &q), 0);
    assert_int_equal(q, INT64_C(2147483648));
    const char *u = "etcd_server_quota_backend_bytes{member=\"x\"} 8589934592\n";
    assert_int_equal(etcd_metrics_quota(u, strlen(u), &q), 0);
    assert_int_equal(q, INT64_C(8589934592));
    const char *none = "etcd_server_has_leader 1\n";
    assert_int_equal(etcd_metrics_quota(none, strlen(none), &q), -ENOENT);
    const char *bad = "etcd_server_quota_backend_bytes banana\n";
    assert_int_equal(etcd_metrics_quota(bad, strlen(bad), &q), -EINVAL);
    const char *neg = "etcd_server_quota_backend_bytes -1\n";
    assert_int_equal(etcd_metrics_quota(neg, strlen(neg), &q), -EINVAL);
    const char *unterminated = "etcd_server_quota_backend_bytes 1024";
    assert_int_equal(etcd_metrics_quota(unterminated, strlen(unterminated), &q), 0);
    assert_int_equal(q, 1024);
    assert_int_equal(etcd_metrics_quota("", 0, &q), -ENOENT);
}

static void test_encoders(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(proto_encode_move_leader(0xabcdef, &buf, &len), 0);
    Etcdserverpb__MoveLeaderRequest *ml = etcdserverpb__move_leader_request__unpack(NULL, len, buf);
    assert_non_null(ml);
    assert_int_equal(ml->targetid, 0xabcdef);
    etcdserverpb__move_leader_request__free_unpacked(ml, NULL);
    free(buf);

    assert_int_equal(proto_encode_hashkv(77, &buf, &len), 0);
    Etcdserverpb__HashKVRequest *hk = etcdserverpb__hash_kvrequest__unpack(NULL, len, buf);
    assert_non_null(hk);
    assert_int_equal(hk->revision, 77);
    etcdserverpb__hash_kvrequest__free_unpacked(hk, NULL);
    free(buf);

    assert_int_equal(proto_encode_compact(99, true, &buf, &len), 0);
    Etcdserverpb__CompactionRequest *cr = etcdserverpb__compaction_request__unpack(NULL, len, buf);
    assert_non_null(cr);
    assert_int_equal(cr->revision, 99);
    assert_true(cr->physical);
    etcdserverpb__compaction_request__free_unpacked(cr, NULL);
    free(buf);

    assert_int_equal(proto_encode_alarm(2, 0x12, 1, &buf, &len), 0);
    Etcdserverpb__AlarmRequest *ar = etcdserverpb__alarm_request__unpack(NULL, len, buf);
    assert_non_null(ar);
    assert_int_equal(ar->action, 2);
    assert_int_equal(ar->memberid, 0x12);
    assert_int_equal(ar->alarm, 1);
    etcdserverpb__alarm_request__free_unpacked(ar, NULL);
    free(buf);
    assert_int_equal(proto_encode_alarm(3, 0, 1, &buf, &len), -EINVAL);
    assert_int_equal(proto_encode_alarm(2, 0, 7, &buf, &len), -EINVAL);

    assert_int_equal(proto_encode_defragment(&buf, &len), 0);
    assert_int_equal(len, 0); /* an empty message */
    free(buf);
}

static void test_decoders(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.member_id = 5;
    h.revision = 42;
    Etcdserverpb__HashKVResponse r = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
    r.header = &h;
    r.hash = 0xdeadbeef;
    r.compact_revision = 40;
    uint8_t buf[128];
    size_t len = etcdserverpb__hash_kvresponse__pack(&r, buf);
    struct etcd_header hdr;
    uint32_t hash;
    int64_t crev;
    assert_int_equal(proto_decode_hashkv(buf, len, &hdr, &hash, &crev), 0);
    assert_int_equal(hash, 0xdeadbeef);
    assert_int_equal(crev, 40);
    assert_int_equal(hdr.revision, 42);
    assert_int_equal(proto_decode_header_only(buf, 3, &hdr), -EBADMSG);

    Etcdserverpb__StatusResponse s;
    etcdserverpb__status_response__init(&s); /* its INIT macro casts away const */
    s.dbsizequota = 1234567;
    len = etcdserverpb__status_response__pack(&s, buf);
    struct etcd_status st;
    assert_int_equal(proto_decode_status(buf, len, &st), 0);
    assert_int_equal(st.db_size_quota, 1234567);
    etcd_status_free(&st);
}

static void test_table(void **state)
{
    (void)state;
    struct cache_snapshot *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    struct cache_cluster *cl = &s->cluster;
    cl->ok = true;
    cl->probed_at_ms = 1;
    cl->n_members = 3;
    for (size_t i = 0; i < 3; i++) {
        struct cache_member *m = &cl->members[i];
        m->id = 0xa0 + i;
        (void)snprintf(m->name, sizeof(m->name), "etcd-%zu", i);
        (void)snprintf(m->client_urls[0], CACHE_MAX_URL, "https://127.0.0.1:%zu", 2379 + i);
        m->n_client_urls = 1;
        m->started = m->answered = m->healthy = true;
        m->took_ms = 3;
        m->status.leader = 0xa0;
        m->status.db_size = 123456789;
    }
    cl->members[2].healthy = false;
    (void)snprintf(cl->members[2].error, CACHE_MAX_ERROR, "status: UNAVAILABLE: refused");
    s->maint.n_members = 2;
    s->maint.members[0] = (struct cache_maint_member){.id = 0xa0, .hash_ok = true, .hash = 0xab};
    s->maint.members[1] =
        (struct cache_maint_member){.id = 0xa1, .hash_ok = true, .hash = 0xcd, .divergent = true};
    (void)snprintf(s->maint.hashkv_verdict, sizeof(s->maint.hashkv_verdict), "divergent member");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(maint_table_render(s, 0xa0, &text, &len), 0);
    print_message("%s", text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "|        ENDPOINT        | HEALTH | TOOK |"));
    assert_non_null(strstr(text, "| https://127.0.0.1:2379 | true   | 3ms  |"));
    assert_non_null(strstr(text, "123 MB"));
    assert_non_null(strstr(text, "000000cd | divergent"));
    assert_non_null(strstr(text, "refused"));
    assert_non_null(strstr(text, "failing"));
    assert_non_null(strstr(text, "hashkv at revision 0: divergent member"));
    free(text);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_decoders),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
