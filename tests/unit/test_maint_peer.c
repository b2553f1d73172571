/* test_maint_peer.c - the HashKV verdict between agents: render from a cache snapshot and parse
 * back, the strict parser's refusals, the follower's decision (one row per safety rule) and the
 * leader's agent URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maint_peer.h"

#define A 0xa1u
#define B 0xb2u
#define C 0xc3u
#define CL 0xc1u

/* a snapshot of the leader A's agent after a check at R 42 naming C */
static void leader_snapshot(struct cache_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->local.have_status = true;
    s->local.status.member_id = A;
    s->local.status.cluster_id = CL;
    s->maint.coordinator = true;
    snprintf(s->maint.hashkv_verdict, sizeof(s->maint.hashkv_verdict), "divergent member");
    s->maint.hashkv_revision = 42;
    s->maint.hashkv_at_ms = 1000;
    const uint32_t hashes[3] = {111, 111, 999};
    for (size_t i = 0; i < 3; i++) {
        s->maint.members[i] = (struct cache_maint_member){.id = A + i * 0x11u,
                                                          .hash_ok = true,
                                                          .hash = hashes[i],
                                                          .compact_revision = 7,
                                                          .divergent = i == 2};
    }
    s->maint.n_members = 3;
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct cache_snapshot s;
    leader_snapshot(&s);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(maint_peer_render(&s, 1500, &text, &len), 0);
    struct maint_peer_verdict v;
    assert_int_equal(maint_peer_parse(text, len, &v), 0);
    assert_int_equal(v.member_id, A);
    assert_int_equal(v.cluster_id, CL);
    assert_true(v.coordinator);
    assert_string_equal(v.verdict, "divergent member");
    assert_int_equal(v.revision, 42);
    assert_int_equal(v.age_ms, 500);
    assert_int_equal(v.n_members, 3);
    assert_int_equal(v.n, 3);
    assert_int_equal(v.h[2].id, C);
    assert_int_equal(v.h[2].hash, 999);
    assert_int_equal(v.h[1].compact_revision, 7);
    free(text);

    /* never checked: an empty verdict, no members */
    s.maint.hashkv_verdict[0] = '\0';
    assert_int_equal(maint_peer_render(&s, 1500, &text, &len), 0);
    assert_int_equal(maint_peer_parse(text, len, &v), 0);
    assert_int_equal(v.revision, 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(v.age_ms, -1);
    free(text);

    /* no Status yet: nothing to say */
    s.local.have_status = false;
    assert_int_equal(maint_peer_render(&s, 1500, &text, &len), -EAGAIN);
    assert_null(text);
}

static const char *const bad[] = {
    "",
    "{}",
    "[]",
    "null",
    /* a key missing */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"members\":[]}",
    /* an extra key */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":[],\"x\":1}",
    /* zero ID */
    "{\"member_id\":\"0\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":[]}",
    /* non-hex ID */
    "{\"member_id\":\"zz\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":[]}",
    /* 17 digits */
    "{\"member_id\":\"11111111111111111\",\"cluster_id\":\"c1\",\"coordinator\":true,"
    "\"verdict\":\"x\",\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":[]}",
    /* negative revision */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":-1,\"age_ms\":0,\"cluster_size\":1,\"members\":[]}",
    /* fractional revision */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1.5,\"age_ms\":0,\"cluster_size\":1,\"members\":[]}",
    /* coordinator not a bool */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":1,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":[]}",
    /* more members than the cluster size */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":["
    "{\"id\":\"a1\",\"ok\":true,\"hash\":1,\"compact_revision\":0},"
    "{\"id\":\"b2\",\"ok\":true,\"hash\":1,\"compact_revision\":0}]}",
    /* the same member twice */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":3,\"members\":["
    "{\"id\":\"a1\",\"ok\":true,\"hash\":1,\"compact_revision\":0},"
    "{\"id\":\"a1\",\"ok\":true,\"hash\":2,\"compact_revision\":0}]}",
    /* hash above 32 bits */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":["
    "{\"id\":\"a1\",\"ok\":true,\"hash\":4294967296,\"compact_revision\":0}]}",
    /* member with an extra key */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":["
    "{\"id\":\"a1\",\"ok\":true,\"hash\":1,\"compact_revision\":0,\"divergent\":true}]}",
    /* compact revision below etcd's -1 ("never compacted") */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":["
    "{\"id\":\"a1\",\"ok\":true,\"hash\":1,\"compact_revision\":-2}]}",
    /* trailing garbage */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,\"verdict\":\"x\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":[]} x",
    /* verdict too long */
    "{\"member_id\":\"a1\",\"cluster_id\":\"c1\",\"coordinator\":true,"
    "\"verdict\":\"0123456789012345678901234567890123456789\","
    "\"revision\":1,\"age_ms\":0,\"cluster_size\":1,\"members\":[]}",
};

static void test_parse_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct maint_peer_verdict v;
        v.member_id = 77;
        if (maint_peer_parse(bad[i], strlen(bad[i]), &v) != -EINVAL)
            fail_msg("accepted bad[%zu]: %s", i, bad[i]);
        assert_int_equal(v.member_id, 0); /* cleared */
    }
    const char ok[] = "{\"member_id\":\"A1\",\"cluster_id\":\"c1\",\"coordinator\":false,"
                      "\"verdict\":\"\",\"revision\":0,\"age_ms\":-1,\"cluster_size\":1,"
                      "\"members\":[{\"id\":\"a1\",\"ok\":true,\"hash\":1,"
                      "\"compact_revision\":-1}]}\n";
    struct maint_peer_verdict v;
    assert_int_equal(maint_peer_parse(ok, strlen(ok), &v), 0);
    assert_int_equal(v.member_id, A);
    assert_int_equal(v.h[0].compact_revision, -1); /* etcd's "never compacted" */
    /* a NUL inside is refused */
    assert_int_equal(maint_peer_parse(ok, sizeof(ok), &v), -EINVAL);
}

/* the decision: one row per rule */
struct drow {
    const char *name;
    uint64_t self, cluster, leader;
    size_t local_members;
    /* the verdict */
    uint64_t from;
    bool coordinator;
    const char *verdict;
    int64_t rev;
    size_t n_members;
    uint32_t ha, hb, hc; /* hashes of A, B, C (0: no answer) */
    int64_t ca, cb, cc;  /* compact revisions */
    enum maint_marker_action want;
};

static const struct drow drows[] = {
    {"C named by a majority: write", C, CL, A, 3, A, true, "divergent member", 42, 3, 1, 1, 9, 0, 0,
     0, MAINT_MARKER_WRITE},
    {"B is consistent: remove", B, CL, A, 3, A, true, "divergent member", 42, 3, 1, 1, 9, 0, 0, 0,
     MAINT_MARKER_REMOVE},
    {"all equal: remove", C, CL, A, 3, A, true, "consistent", 42, 3, 1, 1, 1, 0, 0, 0,
     MAINT_MARKER_REMOVE},
    {"three different hashes: inconsistent, nobody named", C, CL, A, 3, A, true,
     "inconsistent cluster", 42, 3, 1, 2, 3, 0, 0, 0, MAINT_MARKER_LEAVE},
    {"not from the leader's agent", C, CL, B, 3, A, true, "divergent member", 42, 3, 1, 1, 9, 0, 0,
     0, MAINT_MARKER_LEAVE},
    {"the answering agent does not coordinate", C, CL, A, 3, A, false, "divergent member", 42, 3, 1,
     1, 9, 0, 0, 0, MAINT_MARKER_LEAVE},
    {"another cluster", C, CL + 1, A, 3, A, true, "divergent member", 42, 3, 1, 1, 9, 0, 0, 0,
     MAINT_MARKER_LEAVE},
    {"never checked", C, CL, A, 3, A, true, "", 0, 0, 0, 0, 0, 0, 0, 0, MAINT_MARKER_LEAVE},
    {"our member did not answer", C, CL, A, 3, A, true, "consistent", 42, 3, 1, 1, 0, 0, 0, 0,
     MAINT_MARKER_LEAVE},
    {"2 of 5 agree, we differ: no majority of the cluster", C, CL, A, 5, A, true,
     "divergent member", 42, 3, 1, 1, 9, 0, 0, 0, MAINT_MARKER_LEAVE},
    {"2 of a claimed 5 agree (our view 3): no majority", C, CL, A, 3, A, true, "divergent member",
     42, 5, 1, 1, 9, 0, 0, 0, MAINT_MARKER_LEAVE},
    {"other compact revision: not compared", C, CL, A, 3, A, true, "divergent member", 42, 3, 1, 1,
     9, 5, 5, 6, MAINT_MARKER_LEAVE},
    {"our hashes say divergent, the leader's verdict does not", C, CL, A, 3, A, true,
     "inconsistent cluster", 42, 3, 1, 1, 9, 0, 0, 0, MAINT_MARKER_LEAVE},
    {"a new member (not in the check)", 0xeeu, CL, A, 3, A, true, "divergent member", 42, 3, 1, 1,
     9, 0, 0, 0, MAINT_MARKER_LEAVE},
};

static void test_decide(void **state)
{
    const struct drow *r = *state;
    struct maint_peer_verdict v = {.member_id = r->from,
                                   .cluster_id = CL,
                                   .coordinator = r->coordinator,
                                   .revision = r->rev,
                                   .age_ms = 10,
                                   .n_members = r->n_members};
    snprintf(v.verdict, sizeof(v.verdict), "%s", r->verdict);
    const uint32_t hs[3] = {r->ha, r->hb, r->hc};
    const int64_t cs[3] = {r->ca, r->cb, r->cc};
    for (size_t i = 0; r->rev && i < 3; i++)
        v.h[v.n++] = (struct maint_plan_hash){
            .id = A + i * 0x11u, .ok = hs[i] != 0, .hash = hs[i], .compact_revision = cs[i]};
    uint32_t maj = 0, own = 0;
    const char *why = NULL;
    enum maint_marker_action a =
        maint_peer_decide(&v, r->self, r->cluster, r->leader, r->local_members, &maj, &own, &why);
    assert_non_null(why);
    if (a != r->want)
        fail_msg("%s: got %d want %d (%s)", r->name, a, r->want, why);
    if (a == MAINT_MARKER_WRITE) {
        assert_int_equal(maj, 1);
        assert_int_equal(own, 9);
    }
}

static void test_url(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(
        maint_peer_url("https://etcd-0.etcd-discovery.ns.svc:2379", "https", "9980", out, 128), 0);
    assert_string_equal(out, "https://etcd-0.etcd-discovery.ns.svc:9980");
    assert_int_equal(maint_peer_url("https://10.0.0.5", "http", "9981", out, 128), 0);
    assert_string_equal(out, "http://10.0.0.5:9981");
    assert_int_equal(maint_peer_url("https://[fd00::1]:2379/", "https", "9980", out, 128), 0);
    assert_string_equal(out, "https://[fd00::1]:9980");
    assert_int_equal(maint_peer_url("https://:2379", "https", "9980", out, 128), -EINVAL);
    assert_int_equal(maint_peer_url("etcd-0:2379", "https", "9980", out, 128), -EINVAL);
    assert_int_equal(maint_peer_url("https://[::1", "https", "9980", out, 128), -EINVAL);
    assert_int_equal(maint_peer_url("https://[]:1", "https", "9980", out, 128), -EINVAL);
    assert_int_equal(maint_peer_url("https://h:1", "https", "", out, 128), -EINVAL);
    assert_int_equal(maint_peer_url("https://a-long-host-name:1", "https", "9980", out, 16),
                     -ENAMETOOLONG);
    assert_int_equal(maint_peer_listen_port("0.0.0.0:9980", out, 8), 0);
    assert_string_equal(out, "9980");
    assert_int_equal(maint_peer_listen_port("[::]:9981", out, 8), 0);
    assert_string_equal(out, "9981");
    assert_int_equal(maint_peer_listen_port("0.0.0.0", out, 8), -EINVAL);
    assert_int_equal(maint_peer_listen_port("0.0.0.0:", out, 8), -EINVAL);
    assert_int_equal(maint_peer_listen_port("h:99x", out, 8), -EINVAL);
    assert_int_equal(maint_peer_listen_port("h:123456", out, 8), -EINVAL);
}

int main(void)
{
    struct CMUnitTest tests[32];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest){"render and parse back", test_roundtrip, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"parser refusals", test_parse_refuses, NULL, NULL, NULL};
    for (size_t i = 0; i < sizeof(drows) / sizeof(drows[0]); i++)
        tests[n++] = (struct CMUnitTest){drows[i].name, test_decide, NULL, NULL,
                                         (void *)(uintptr_t)&drows[i]};
    tests[n++] = (struct CMUnitTest){"agent URLs", test_url, NULL, NULL, NULL};
    return _cmocka_run_group_tests("maint_peer", tests, n, NULL, NULL);
}
