/* test_act.c - reset-member's file operations in a temp dir: atomic writes, moving the data
 * dir aside, pruning old copies (never the live dir, never foreign names), the rendered
 * initial cluster, and act_run's state/env files for actions without membership changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "act.h"
#include "testutil.h"

static bool fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap;
}

struct tmp {
    char dir[PATH_MAX];
    char data[PATH_MAX];
};

static int setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR");

    assert_non_null(t);
    assert_true(fits(snprintf(t->dir, sizeof(t->dir), "%s/test_act.XXXXXX", base ? base : "/tmp"),
                     PATH_MAX));
    assert_non_null(mkdtemp(t->dir));
    assert_true(fits(snprintf(t->data, sizeof(t->data), "%s/data", t->dir), PATH_MAX));
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tmp *t = *state;
    test_rm_tree(t->dir);
    free(t);
    return 0;
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;
    assert_non_null(f);
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void make_data(const char *data)
{
    char p[PATH_MAX];
    assert_int_equal(mkdir(data, 0700), 0);
    assert_true(fits(snprintf(p, sizeof(p), "%s/member", data), PATH_MAX));
    assert_int_equal(mkdir(p, 0700), 0);
    assert_true(fits(snprintf(p, sizeof(p), "%s/member/marker", data), PATH_MAX));
    write_file(p, "precious");
}

static size_t count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void test_write_atomic(void **state)
{
    struct tmp *t = *state;
    char path[PATH_MAX], buf[64], err[256];

    assert_true(fits(snprintf(path, sizeof(path), "%s/state", t->dir), PATH_MAX));
    assert_int_equal(act_write_atomic(path, "new\n", 4, err, sizeof(err)), 0);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "new\n");
    assert_int_equal(act_write_atomic(path, "existing\n", 9, err, sizeof(err)), 0);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "existing\n");
    /* no temp file left behind */
    assert_int_equal(count_entries(t->dir, "state"), 1);
}

static void test_write_atomic_bad_dir(void **state)
{
    struct tmp *t = *state;
    char path[PATH_MAX], err[256] = "";

    assert_true(fits(snprintf(path, sizeof(path), "%s/nodir/state", t->dir), PATH_MAX));
    assert_int_equal(act_write_atomic(path, "new\n", 4, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "nodir"));
}

static void test_move_aside(void **state)
{
    struct tmp *t = *state;
    char out[PATH_MAX], out2[PATH_MAX], err[256], p[PATH_MAX], buf[64];
    time_t now = 1795000000; /* 2026-11-18T11:06:40Z */
    struct stat st;

    make_data(t->data);
    assert_int_equal(act_move_aside(t->data, now, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(stat(t->data, &st), -1);
    assert_true(fits(snprintf(p, sizeof(p), "%s/data.reset-20261118T110640Z", t->dir), PATH_MAX));
    assert_string_equal(out, p);
    assert_true(fits(snprintf(p, sizeof(p), "%s/member/marker", out), PATH_MAX));
    read_file(p, buf, sizeof(buf));
    assert_string_equal(buf, "precious");
    /* same second again: a suffix, never an overwrite */
    make_data(t->data);
    assert_int_equal(act_move_aside(t->data, now, out2, sizeof(out2), err, sizeof(err)), 0);
    assert_true(fits(snprintf(p, sizeof(p), "%s/data.reset-20261118T110640Z-1", t->dir), PATH_MAX));
    assert_string_equal(out2, p);
    /* nothing to move */
    assert_int_equal(act_move_aside(t->data, now, out, sizeof(out), err, sizeof(err)), -ENOENT);
}

static void test_move_aside_not_dir(void **state)
{
    struct tmp *t = *state;
    char out[PATH_MAX], err[256];

    write_file(t->data, "x");
    assert_int_equal(act_move_aside(t->data, 0, out, sizeof(out), err, sizeof(err)), -ENOTDIR);
}

static void mk(const char *dir, const char *name)
{
    char p[PATH_MAX];
    assert_true(fits(snprintf(p, sizeof(p), "%s/%s", dir, name), PATH_MAX));
    assert_int_equal(mkdir(p, 0700), 0);
    assert_true(fits(snprintf(p, sizeof(p), "%s/%s/f", dir, name), PATH_MAX));
    write_file(p, "x");
}

static bool exists(const char *dir, const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    assert_true(fits(snprintf(p, sizeof(p), "%s/%s", dir, name), PATH_MAX));
    return stat(p, &st) == 0;
}

static void test_prune(void **state)
{
    struct tmp *t = *state;
    char err[256];
    size_t pruned = 99;

    make_data(t->data);
    mk(t->dir, "data.reset-20250101T000000Z");
    mk(t->dir, "data.reset-20260101T000000Z");
    mk(t->dir, "data.reset-20260101T000000Z-1");
    mk(t->dir, "data.reset-20260101T000000Z-10");
    mk(t->dir, "data.reset-20260101T000000Z-2");
    /* not ours: must survive */
    mk(t->dir, "data.reset-2026");
    mk(t->dir, "data.reset-20260101T000000Z-x");
    mk(t->dir, "data.reset-20260101X000000Z");
    mk(t->dir, "other.reset-20200101T000000Z");
    mk(t->dir, "data.resetx");

    assert_int_equal(act_prune_backups(t->data, 2, &pruned, err, sizeof(err)), 0);
    assert_int_equal(pruned, 3);
    assert_false(exists(t->dir, "data.reset-20250101T000000Z"));
    assert_false(exists(t->dir, "data.reset-20260101T000000Z"));
    assert_false(exists(t->dir, "data.reset-20260101T000000Z-1"));
    assert_true(exists(t->dir, "data.reset-20260101T000000Z-2"));
    assert_true(exists(t->dir, "data.reset-20260101T000000Z-10"));
    assert_true(exists(t->dir, "data/member/marker"));
    assert_true(exists(t->dir, "data.reset-2026"));
    assert_true(exists(t->dir, "data.reset-20260101T000000Z-x"));
    assert_true(exists(t->dir, "data.reset-20260101X000000Z"));
    assert_true(exists(t->dir, "other.reset-20200101T000000Z"));
    assert_true(exists(t->dir, "data.resetx"));

    /* keep 0 deletes every copy, still not the live dir */
    assert_int_equal(act_prune_backups(t->data, 0, &pruned, err, sizeof(err)), 0);
    assert_int_equal(pruned, 2);
    assert_true(exists(t->dir, "data/member/marker"));
    /* nothing left to prune */
    assert_int_equal(act_prune_backups(t->data, 0, &pruned, err, sizeof(err)), 0);
    assert_int_equal(pruned, 0);
}

static void test_initial_cluster(void **state)
{
    char *p0[] = {"https://a:2380"}, *p1[] = {"https://b:2380", "https://b2:2380"},
         *p2[] = {"https://c:2380"}, *c0[] = {"https://a:2379"};
    struct etcd_member m[3] = {
        {.id = 1,
         .name = "etcd-0",
         .peer_urls = p0,
         .n_peer_urls = 1,
         .client_urls = c0,
         .n_client_urls = 1},
        {.id = 0xabc, .name = "", .peer_urls = p1, .n_peer_urls = 2},
        {.id = 3, .name = "", .peer_urls = p2, .n_peer_urls = 1},
    };
    struct etcd_member_list l = {.members = m, .n_members = 3};
    char out[256], small[20];

    (void)state;
    assert_int_equal(act_initial_cluster(&l, "etcd-2", "https://c:2380", out, sizeof(out)), 0);
    assert_string_equal(out, "etcd-0=https://a:2380,abc=https://b:2380,abc=https://b2:2380,"
                             "etcd-2=https://c:2380");
    /* self not listed yet: appended */
    l.n_members = 1;
    assert_int_equal(act_initial_cluster(&l, "etcd-2", "https://c:2380", out, sizeof(out)), 0);
    assert_string_equal(out, "etcd-0=https://a:2380,etcd-2=https://c:2380");
    assert_int_equal(act_initial_cluster(&l, "etcd-2", "https://c:2380", small, sizeof(small)),
                     -ENOSPC);
    assert_int_equal(act_initial_cluster(NULL, "etcd-2", "https://c:2380", out, sizeof(out)), 0);
    assert_string_equal(out, "etcd-2=https://c:2380");
}

static void cfg_of(struct tmp *t, struct act_config *c, char *state, char *env)
{
    assert_true(fits(snprintf(state, PATH_MAX, "%s/state", t->dir), PATH_MAX));
    assert_true(fits(snprintf(env, PATH_MAX, "%s/env", t->dir), PATH_MAX));
    *c = (struct act_config){.name = "etcd-1",
                             .peer_url = "https://b:2380",
                             .data_dir = t->data,
                             .state_file = state,
                             .env_file = env,
                             .initial_cluster = "etcd-0=https://a:2380,etcd-1=https://b:2380",
                             .keep_backups = 1,
                             .call_timeout_ms = 1000,
                             .now = 1795000000};
}

static void test_run_bootstrap_and_keep(void **state)
{
    struct tmp *t = *state;
    struct act_config c;
    struct act_result r;
    struct decide_decision d = {.action = DECIDE_BOOTSTRAP, .state = DECIDE_STATE_NEW};
    char sp[PATH_MAX], ep[PATH_MAX], buf[512], err[256];
    char *p0[] = {"https://a:2380"}, *p1[] = {"https://b:2380"};
    struct etcd_member m[2] = {{.id = 1, .name = "etcd-0", .peer_urls = p0, .n_peer_urls = 1},
                               {.id = 2, .name = "etcd-1", .peer_urls = p1, .n_peer_urls = 1}};
    struct etcd_member_list l = {.members = m, .n_members = 2};

    cfg_of(t, &c, sp, ep);
    assert_int_equal(act_run(&c, &d, NULL, NULL, &r, err, sizeof(err)), 0);
    read_file(sp, buf, sizeof(buf));
    assert_string_equal(buf, "new\n");
    read_file(ep, buf, sizeof(buf));
    assert_string_equal(buf, "ETCD_INITIAL_CLUSTER_STATE=new\n"
                             "ETCD_INITIAL_CLUSTER=etcd-0=https://a:2380,etcd-1=https://b:2380\n");

    make_data(t->data);
    d = (struct decide_decision){
        .action = DECIDE_KEEP, .state = DECIDE_STATE_EXISTING, .member_id = 2};
    assert_int_equal(act_run(&c, &d, NULL, &l, &r, err, sizeof(err)), 0);
    assert_int_equal(r.member_id, 2);
    assert_string_equal(r.moved_to, "");
    read_file(sp, buf, sizeof(buf));
    assert_string_equal(buf, "existing\n");
    assert_true(exists(t->dir, "data/member/marker"));
}

static void test_run_reset_reuse_moves_and_prunes(void **state)
{
    struct tmp *t = *state;
    struct act_config c;
    struct act_result r;
    /* reset onto an unstarted entry: no membership call, move aside, then prune */
    struct decide_decision d = {
        .action = DECIDE_RESET, .state = DECIDE_STATE_EXISTING, .move_aside = true, .member_id = 7};
    char sp[PATH_MAX], ep[PATH_MAX], buf[512], err[256];
    char *p0[] = {"https://a:2380"}, *p1[] = {"https://b:2380"};
    struct etcd_member m[2] = {{.id = 1, .name = "etcd-0", .peer_urls = p0, .n_peer_urls = 1},
                               {.id = 7, .name = "", .peer_urls = p1, .n_peer_urls = 1}};
    struct etcd_member_list l = {.members = m, .n_members = 2};

    cfg_of(t, &c, sp, ep);
    mk(t->dir, "data.reset-20200101T000000Z");
    make_data(t->data);
    assert_int_equal(act_run(&c, &d, NULL, &l, &r, err, sizeof(err)), 0);
    assert_int_equal(r.member_id, 7);
    assert_non_null(strstr(r.moved_to, "data.reset-20261118T110640Z"));
    assert_int_equal(r.pruned, 1);
    assert_false(exists(t->dir, "data"));
    assert_false(exists(t->dir, "data.reset-20200101T000000Z"));
    assert_true(exists(t->dir, "data.reset-20261118T110640Z/member/marker"));
    read_file(ep, buf, sizeof(buf));
    assert_string_equal(buf, "ETCD_INITIAL_CLUSTER_STATE=existing\n"
                             "ETCD_INITIAL_CLUSTER=etcd-0=https://a:2380,etcd-1=https://b:2380\n");
}

static void test_run_refuse_touches_nothing(void **state)
{
    struct tmp *t = *state;
    struct act_config c;
    struct act_result r;
    struct decide_decision d = {.action = DECIDE_REFUSE};
    char sp[PATH_MAX], ep[PATH_MAX], err[256];

    cfg_of(t, &c, sp, ep);
    make_data(t->data);
    assert_int_equal(act_run(&c, &d, NULL, NULL, &r, err, sizeof(err)), -EINVAL);
    assert_false(exists(t->dir, "state"));
    assert_false(exists(t->dir, "env"));
    assert_true(exists(t->dir, "data/member/marker"));
    /* a membership change without a connection is an error, not a silent skip */
    d = (struct decide_decision){
        .action = DECIDE_READD, .state = DECIDE_STATE_EXISTING, .add_self = true};
    assert_int_equal(act_run(&c, &d, NULL, NULL, &r, err, sizeof(err)), -EINVAL);
    assert_false(exists(t->dir, "state"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_bad_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_aside_not_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test(test_initial_cluster),
        cmocka_unit_test_setup_teardown(test_run_bootstrap_and_keep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_reset_reuse_moves_and_prunes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_refuse_touches_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
