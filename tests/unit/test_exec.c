/* test_exec.c - `reset-member exec`: the strict env/state file parsers (every edge), the bounded
 * file reader, and exec_main in a forked child that execs real programs (/usr/bin/env,
 * /usr/bin/printf, /usr/bin/touch) to show what the program gets and when it is not started. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "array.h"
#include "exec.h"
#include "testutil.h"

#define STATE_NEW "ETCD_INITIAL_CLUSTER_STATE=new\n"
#define STATE_EXISTING "ETCD_INITIAL_CLUSTER_STATE=existing\n"
#define IC "etcd-0=https://10.0.0.1:2380,etcd-1=https://etcd-1.d.ns.svc:2380"
#define CHILD_OUT_MAX 65536

static char err[1024];
static struct exec_env env;

static int parse(const char *s)
{
    err[0] = '\0';
    return exec_parse_env(s, strlen(s), &env, err, sizeof(err));
}

static void test_env_ok(void **state)
{
    (void)state;
    assert_int_equal(parse(STATE_NEW), 0);
    assert_string_equal(env.state, "new");
    assert_string_equal(env.initial_cluster, "");
    assert_int_equal(parse(STATE_EXISTING "ETCD_INITIAL_CLUSTER=" IC "\n"), 0);
    assert_string_equal(env.state, "existing");
    assert_string_equal(env.initial_cluster, IC);
    /* any order */
    assert_int_equal(parse("ETCD_INITIAL_CLUSTER=" IC "\n" STATE_NEW), 0);
    assert_string_equal(env.state, "new");
    assert_string_equal(env.initial_cluster, IC);
    /* a single member (restore.c's file) and IPv6 peers */
    assert_int_equal(parse(STATE_NEW "ETCD_INITIAL_CLUSTER=etcd-0=https://[::1]:2380\n"), 0);
    assert_string_equal(env.initial_cluster, "etcd-0=https://[::1]:2380");
}

/* Exactly what act.c and restore.c write parses back. */
static void test_env_writer_format(void **state)
{
    char buf[EXEC_MAX_FILE];
    const char *ic = "a=https://127.0.0.1:1,b=https://127.0.0.1:2";
    (void)state;
    snprintf(buf, sizeof(buf), "ETCD_INITIAL_CLUSTER_STATE=%s\n%s%s%s", "existing",
             "ETCD_INITIAL_CLUSTER=", ic, "\n");
    assert_int_equal(parse(buf), 0);
    assert_string_equal(env.initial_cluster, ic);
    snprintf(buf, sizeof(buf), "ETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER=%s=%s\n",
             "etcd-0", "https://127.0.0.1:2380");
    assert_int_equal(parse(buf), 0);
}

static void expect_bad(const char *s, size_t len, const char *why)
{
    memset(&env, 0x5a, sizeof(env));
    err[0] = '\0';
    int rc = exec_parse_env(s, len, &env, err, sizeof(err));
    if (rc != -EINVAL)
        fail_msg("accepted (rc %d): %.*s", rc, (int)len, s);
    if (!strstr(err, why))
        fail_msg("reason %s, want it to contain %s (input %.*s)", err, why, (int)len, s);
}
#define BAD(s, why) expect_bad(s, sizeof(s) - 1, why)

static void test_env_rejects(void **state)
{
    (void)state;
    BAD("", "no ETCD_INITIAL_CLUSTER_STATE line");
    BAD("ETCD_INITIAL_CLUSTER=" IC "\n", "no ETCD_INITIAL_CLUSTER_STATE line");
    BAD("ETCD_INITIAL_CLUSTER_STATE=new", "no newline");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=" IC, "no newline");
    BAD("\n", "empty line");
    BAD(STATE_NEW "\n", "empty line");
    BAD("\n" STATE_NEW, "empty line");
    BAD("ETCD_INITIAL_CLUSTER_STATE=new\r\n", "0x0d");
    BAD(" ETCD_INITIAL_CLUSTER_STATE=new\n", "0x20");
    BAD("ETCD_INITIAL_CLUSTER_STATE=new \n", "0x20");
    BAD("ETCD_INITIAL_CLUSTER_STATE =new\n", "0x20");
    BAD("\tETCD_INITIAL_CLUSTER_STATE=new\n", "0x09");
    BAD("ETCD_INITIAL_CLUSTER_STATE=new\x7f\n", "0x7f");
    BAD("ETCD_INITIAL_CLUSTER_STATE=n\0ew\n", "0x00");
    BAD("export ETCD_INITIAL_CLUSTER_STATE=new\n", "0x20");
    BAD("#comment\n" STATE_NEW, "not NAME=value");
    BAD("#ETCD_INITIAL_CLUSTER_STATE=new\n",
        "only ETCD_INITIAL_CLUSTER_STATE and ETCD_INITIAL_CLUSTER");
    BAD(STATE_NEW "ETCD_NAME=x\n", "only ETCD_INITIAL_CLUSTER_STATE");
    BAD(STATE_NEW "LD_PRELOAD=/tmp/x.so\n", "only ETCD_INITIAL_CLUSTER_STATE");
    BAD(STATE_NEW "PATH=/tmp\n", "only");
    BAD("etcd_initial_cluster_state=new\n", "only");
    BAD("ETCD_INITIAL_CLUSTER_STATEX=new\n", "only");
    BAD("ETCD_INITIAL_CLUSTER_STAT=new\n", "only");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTE=" IC "\n", "only");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTERS=" IC "\n", "only");
    BAD("=new\n", "only");
    BAD("ETCD_INITIAL_CLUSTER_STATE\n", "not NAME=value");
    BAD(STATE_NEW "garbage\n", "not NAME=value");
    BAD("ETCD_INITIAL_CLUSTER_STATE=\n", "want new or existing");
    BAD("ETCD_INITIAL_CLUSTER_STATE=New\n", "want new or existing");
    BAD("ETCD_INITIAL_CLUSTER_STATE=newx\n", "want new or existing");
    BAD("ETCD_INITIAL_CLUSTER_STATE=existin\n", "want new or existing");
    BAD("ETCD_INITIAL_CLUSTER_STATE=\"new\"\n", "want new or existing");
    BAD("ETCD_INITIAL_CLUSTER_STATE='new'\n", "want new or existing");
    BAD("ETCD_INITIAL_CLUSTER_STATE=$(reboot)\n", "want new or existing");
    BAD("ETCD_INITIAL_CLUSTER_STATE=new=new\n", "want new or existing");
    BAD(STATE_NEW STATE_NEW, "ETCD_INITIAL_CLUSTER_STATE given twice");
    BAD(STATE_NEW STATE_EXISTING, "given twice");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=" IC "\nETCD_INITIAL_CLUSTER=" IC "\n",
        "ETCD_INITIAL_CLUSTER given twice");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=\n", "ETCD_INITIAL_CLUSTER is empty");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=etcd-0\n", "ETCD_INITIAL_CLUSTER:");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER==https://x:2380\n", "ETCD_INITIAL_CLUSTER:");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=a=\n", "ETCD_INITIAL_CLUSTER:");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=a=https://x:1,,b=https://y:1\n", "ETCD_INITIAL_CLUSTER:");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=a=https://x:1,a=https://y:1\n", "ETCD_INITIAL_CLUSTER:");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=\"" IC "\"\n", "quote");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=a=https://$(id):1\n", "no expansion");
    BAD(STATE_NEW "ETCD_INITIAL_CLUSTER=a=https://x:1\\\n", "backslash");
}

/* value lengths at the bound: EXEC_MAX_INITIAL_CLUSTER - 1 fits, one more does not */
static void test_env_bounds(void **state)
{
    static char buf[EXEC_MAX_FILE + 2], ic[EXEC_MAX_INITIAL_CLUSTER + 1];
    size_t want = EXEC_MAX_INITIAL_CLUSTER - 1, n = 0;
    (void)state;
    /* three members whose hosts pad the list to exactly `want` bytes */
    for (int m = 0; m < 3; m++) {
        size_t room = (want - n) / (size_t)(3 - m);
        int k = snprintf(ic + n, sizeof(ic) - n, "%s%c=https://", m ? "," : "", 'a' + m);
        n += (size_t)k;
        room -= (size_t)k;
        memset(ic + n, 'h', room);
        n += room;
    }
    while (n < want)
        ic[n++] = 'h';
    ic[n] = '\0';
    assert_int_equal(strlen(ic), want);
    snprintf(buf, sizeof(buf), STATE_NEW "ETCD_INITIAL_CLUSTER=%s\n", ic);
    assert_int_equal(parse(buf), 0);
    assert_string_equal(env.initial_cluster, ic);
    ic[n] = 'h';
    ic[n + 1] = '\0';
    snprintf(buf, sizeof(buf), STATE_NEW "ETCD_INITIAL_CLUSTER=%s\n", ic);
    assert_int_equal(parse(buf), -EINVAL);
    assert_non_null(strstr(err, "too long"));
    /* a buffer above the file bound is refused before it is looked at */
    memset(buf, 'x', EXEC_MAX_FILE + 1);
    buf[EXEC_MAX_FILE] = '\n';
    assert_int_equal(exec_parse_env(buf, EXEC_MAX_FILE + 1, &env, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "larger"));
    /* too many members: config's bound */
    n = 0;
    for (int m = 0; m <= CONFIG_MAX_LIST; m++)
        n += (size_t)snprintf(ic + n, sizeof(ic) - n, "%sm%d=https://h:1", m ? "," : "", m);
    snprintf(buf, sizeof(buf), STATE_NEW "ETCD_INITIAL_CLUSTER=%s\n", ic);
    assert_int_equal(parse(buf), -EINVAL);
    /* an error message never overflows a small buffer */
    char small[8];
    assert_int_equal(exec_parse_env("X\n", 2, &env, small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_state(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        const char *want; /* NULL: rejected */
    } cases[] = {
        {"new", 3, "new"},
        {"new\n", 4, "new"},
        {"existing", 8, "existing"},
        {"existing\n", 9, "existing"},
        {"", 0, NULL},
        {"\n", 1, NULL},
        {"new\n\n", 5, NULL},
        {"new\r\n", 5, NULL},
        {" new", 4, NULL},
        {"new ", 4, NULL},
        {"NEW\n", 4, NULL},
        {"ne", 2, NULL},
        {"new existing\n", 13, NULL},
        {"new\0\n", 5, NULL},
        {"ETCD_INITIAL_CLUSTER_STATE=new\n", 31, NULL},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        memset(&env, 0x5a, sizeof(env));
        int rc = exec_parse_state(cases[i].s, cases[i].len, &env, err, sizeof(err));
        if (cases[i].want) {
            assert_int_equal(rc, 0);
            assert_string_equal(env.state, cases[i].want);
            assert_string_equal(env.initial_cluster, "");
        } else {
            if (rc != -EINVAL)
                fail_msg("state case %zu accepted", i);
            assert_non_null(strstr(err, "want \"new\" or \"existing\""));
        }
    }
}

/* ---- files and exec_main ---------------------------------------------------------------- */

struct tmp {
    char dir[PATH_MAX];
};

static int setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR");
    int n;

    assert_non_null(t);
    n = snprintf(t->dir, sizeof(t->dir), "%s/test_exec.XXXXXX", base ? base : "/tmp");
    assert_true(n > 0 && (size_t)n < sizeof(t->dir));
    assert_non_null(mkdtemp(t->dir));
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

static void path_in(const struct tmp *t, const char *name, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s", t->dir, name);
    assert_true(n > 0 && (size_t)n < len);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_read(void **state)
{
    struct tmp *t = *state;
    char p[PATH_MAX];
    static char big[EXEC_MAX_FILE + 1];

    path_in(t, "env", p, sizeof(p));
    assert_int_equal(exec_read(p, true, &env, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, p));
    write_file(p, STATE_EXISTING, strlen(STATE_EXISTING));
    assert_int_equal(exec_read(p, true, &env, err, sizeof(err)), 0);
    assert_string_equal(env.state, "existing");
    /* the same bytes are not a state file */
    assert_int_equal(exec_read(p, false, &env, err, sizeof(err)), -EINVAL);
    write_file(p, "existing\n", 9);
    assert_int_equal(exec_read(p, false, &env, err, sizeof(err)), 0);
    assert_int_equal(exec_read(p, true, &env, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not NAME=value"));
    /* empty, oversized, a directory */
    write_file(p, "", 0);
    assert_int_equal(exec_read(p, true, &env, err, sizeof(err)), -EINVAL);
    memset(big, '\n', sizeof(big));
    write_file(p, big, sizeof(big));
    assert_int_equal(exec_read(p, true, &env, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "larger than"));
    write_file(p, big, EXEC_MAX_FILE); /* at the bound: read, then refused by the parser */
    assert_int_equal(exec_read(p, true, &env, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "empty line"));
    assert_int_equal(exec_read(t->dir, true, &env, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
}

/* Run exec_main(argv) in a child with `pod_env` (NAME=value strings) set first; its stdout
 * goes to out, stderr is dropped. Returns the child's exit code. */
static int run_exec(const struct tmp *t, const char *const *argv, const char *const *pod_env,
                    char *out, size_t out_len)
{
    char outp[PATH_MAX];
    int status, argc = 0;
    pid_t pid;

    while (argv[argc])
        argc++;
    path_in(t, "stdout", outp, sizeof(outp));
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_WRONLY);
        char *args[32];
        if (fd < 0 || null < 0 || dup2(fd, 1) < 0 || dup2(null, 2) < 0 || argc >= 32)
            _exit(99);
        for (int i = 0; i < argc; i++)
            args[i] = strdup(argv[i]);
        args[argc] = NULL;
        for (size_t i = 0; pod_env && pod_env[i]; i++)
            putenv(strdup(pod_env[i]));
        int code = exec_main(argc, args);
        fflush(NULL); /* _exit does not flush stdio (usage text) */
        _exit(code);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    out[0] = '\0';
    FILE *f = fopen(outp, "rb");
    if (f) {
        size_t n = fread(out, 1, out_len - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    return WEXITSTATUS(status);
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    }
    return false;
}

static void test_main_env_file(void **state)
{
    struct tmp *t = *state;
    static char out[CHILD_OUT_MAX];
    char envp[PATH_MAX], flag[PATH_MAX + 16];
    const char *pod[] = {"ETCD_INITIAL_CLUSTER_STATE=pod", "ETCD_INITIAL_CLUSTER=pod=https://p:1",
                         "ETCD_NAME=etcd-0", NULL};

    path_in(t, "env", envp, sizeof(envp));
    snprintf(flag, sizeof(flag), "--env-file=%s", envp);
    write_file(envp, STATE_EXISTING "ETCD_INITIAL_CLUSTER=" IC "\n",
               strlen(STATE_EXISTING "ETCD_INITIAL_CLUSTER=" IC "\n"));
    const char *argv[] = {"exec", flag, "--", "/usr/bin/env", NULL};
    assert_int_equal(run_exec(t, argv, pod, out, sizeof(out)), 0);
    assert_true(has_line(out, "ETCD_INITIAL_CLUSTER_STATE=existing"));
    assert_true(has_line(out, "ETCD_INITIAL_CLUSTER=" IC));
    assert_true(has_line(out, "ETCD_NAME=etcd-0")); /* the rest of the pod env is kept */
    assert_false(has_line(out, "ETCD_INITIAL_CLUSTER_STATE=pod"));

    /* no ETCD_INITIAL_CLUSTER line: the pod's stays */
    write_file(envp, STATE_NEW, strlen(STATE_NEW));
    assert_int_equal(run_exec(t, argv, pod, out, sizeof(out)), 0);
    assert_true(has_line(out, "ETCD_INITIAL_CLUSTER_STATE=new"));
    assert_true(has_line(out, "ETCD_INITIAL_CLUSTER=pod=https://p:1"));

    /* the program's arguments are passed verbatim, flags after -- are not ours */
    const char *argv2[] = {"exec", "--env-file", envp,           "--", "/usr/bin/printf",
                           "%s|",  "--help",     "--env-file=x", "--", NULL};
    assert_int_equal(run_exec(t, argv2, NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "--help|--env-file=x|--|");
}

static void test_main_state_file(void **state)
{
    struct tmp *t = *state;
    static char out[CHILD_OUT_MAX];
    char sp[PATH_MAX];
    const char *pod[] = {"ETCD_INITIAL_CLUSTER_STATE=pod", "ETCD_INITIAL_CLUSTER=pod=https://p:1",
                         NULL};

    path_in(t, "state", sp, sizeof(sp));
    write_file(sp, "existing\n", 9);
    const char *argv[] = {"exec", "--state-file", sp, "--", "/usr/bin/env", NULL};
    assert_int_equal(run_exec(t, argv, pod, out, sizeof(out)), 0);
    assert_true(has_line(out, "ETCD_INITIAL_CLUSTER_STATE=existing"));
    assert_true(has_line(out, "ETCD_INITIAL_CLUSTER=pod=https://p:1"));
}

/* A missing or malformed file, or a program that cannot be executed: exit 1, nothing ran. */
static void test_main_not_started(void **state)
{
    struct tmp *t = *state;
    static char out[CHILD_OUT_MAX];
    char envp[PATH_MAX], marker[PATH_MAX], sp[PATH_MAX];
    struct stat st;

    path_in(t, "env", envp, sizeof(envp));
    path_in(t, "state", sp, sizeof(sp));
    path_in(t, "ran", marker, sizeof(marker));
    const char *argv[] = {"exec", "--env-file", envp, "--", "/usr/bin/touch", marker, NULL};
    assert_int_equal(run_exec(t, argv, NULL, out, sizeof(out)), 1); /* missing */
    assert_int_equal(stat(marker, &st), -1);
    write_file(envp, STATE_NEW "ETCD_NAME=x\n", strlen(STATE_NEW "ETCD_NAME=x\n"));
    assert_int_equal(run_exec(t, argv, NULL, out, sizeof(out)), 1); /* malformed */
    assert_int_equal(stat(marker, &st), -1);
    write_file(envp, "", 0);
    assert_int_equal(run_exec(t, argv, NULL, out, sizeof(out)), 1); /* empty */
    assert_int_equal(stat(marker, &st), -1);
    /* an env file given but missing never falls back to a valid state file */
    write_file(sp, "new\n", 4);
    unlink(envp);
    assert_int_equal(run_exec(t, argv, NULL, out, sizeof(out)), 1);
    assert_int_equal(stat(marker, &st), -1);
    /* control: a valid file runs it */
    write_file(envp, STATE_NEW, strlen(STATE_NEW));
    assert_int_equal(run_exec(t, argv, NULL, out, sizeof(out)), 0);
    assert_int_equal(stat(marker, &st), 0);
    /* a program that is not there */
    const char *argv2[] = {"exec", "--env-file", envp, "--", "/nonexistent/etcd", NULL};
    assert_int_equal(run_exec(t, argv2, NULL, out, sizeof(out)), 1);
}

static void test_main_usage(void **state)
{
    struct tmp *t = *state;
    static char out[CHILD_OUT_MAX];
    const char *const cases[][8] = {
        {"exec", NULL},
        {"exec", "--env-file", "/x", NULL},
        {"exec", "--env-file", "/x", "--", NULL},
        {"exec", "--env-file", "/x", "--", "usr/bin/env", NULL},
        {"exec", "--env-file", "/x", "--", "env", NULL},
        {"exec", "--env-file", "/x", "--state-file", "/y", "--", "/usr/bin/env", NULL},
        {"exec", "--env-file=", "--", "/usr/bin/env", NULL},
        {"exec", "--bogus", "--", "/usr/bin/env", NULL},
        {"exec", "/usr/bin/env", NULL},
        {"exec", "--env-file", "--", "/usr/bin/env", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int rc = run_exec(t, cases[i], NULL, out, sizeof(out));
        if (rc != 2)
            fail_msg("usage case %zu: exit %d, want 2", i, rc);
    }
    const char *help[] = {"exec", "--help", NULL};
    assert_int_equal(run_exec(t, help, NULL, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--env-file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_ok),
        cmocka_unit_test(test_env_writer_format),
        cmocka_unit_test(test_env_rejects),
        cmocka_unit_test(test_env_bounds),
        cmocka_unit_test(test_state),
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_env_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_state_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_not_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
