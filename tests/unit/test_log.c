/* test_log.c - unit tests for common/log.c: line shape, field order, levels, LOG_LEVEL (in a
 * re-executed child so the once-only env read starts fresh), concurrent writers, and every
 * allocation failing in turn (through cJSON's hooks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "array.h"
#include "bounds.h"
#include "log.h"

#define TEST_LOG_THREADS 4
#define TEST_LOG_LINES 250
#define TEST_LOG_BUF (1u << 20)

/* ---- helpers ---------------------------------------------------------------------------- */

static char tmpl_dir[] = "/tmp/test_log.XXXXXX";

static int open_tmp(char *path, size_t len)
{
    int fd;

    snprintf(path, len, "%s/out", tmpl_dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    return fd;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;

    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    assert_true(n == 0);
    buf[len] = '\0';
    return len;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ". */
static void assert_rfc3339_ms(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    assert_int_equal(strlen(t), strlen(shape));
    for (size_t i = 0; shape[i] != '\0'; i++) {
        if (shape[i] == 'd')
            assert_true(t[i] >= '0' && t[i] <= '9');
        else
            assert_int_equal(t[i], shape[i]);
    }
}

static void assert_str_field(const cJSON *obj, const char *key, const char *want)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    assert_non_null(item);
    assert_true(cJSON_IsString(item));
    assert_string_equal(item->valuestring, want);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(tmpl_dir));
    log_set_program("test_log");
    log_set_level(LOG_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    char path[256];

    (void)state;
    snprintf(path, sizeof path, "%s/out", tmpl_dir);
    unlink(path);
    rmdir(tmpl_dir);
    log_set_fd(2);
    return 0;
}

/* ---- rendering -------------------------------------------------------------------------- */

static void test_render_order_and_types(void **state)
{
    static const char *const want[] = {"time", "level", "prog", "msg", "member", "n", "ok"};
    cJSON *f = cJSON_CreateObject();
    cJSON *obj, *it;
    char *s;
    size_t i = 0;

    (void)state;
    cJSON_AddStringToObject(f, "member", "etcd-0");
    cJSON_AddNumberToObject(f, "n", 3);
    cJSON_AddBoolToObject(f, "ok", 1);
    s = log_render(LOG_WARN, "hello \"world\"\n", f);
    assert_non_null(s);
    assert_null(strchr(s, '\n')); /* one line, no trailing newline */
    obj = cJSON_Parse(s);
    assert_non_null(obj);
    cJSON_ArrayForEach(it, obj)
    {
        assert_true(i < ARRAY_SIZE(want));
        assert_string_equal(it->string, want[i]);
        i++;
    }
    assert_int_equal(i, ARRAY_SIZE(want));
    assert_rfc3339_ms(cJSON_GetObjectItem(obj, "time")->valuestring);
    assert_str_field(obj, "level", "warn");
    assert_str_field(obj, "prog", "test_log");
    assert_str_field(obj, "msg", "hello \"world\"\n");
    assert_str_field(obj, "member", "etcd-0");
    assert_int_equal(cJSON_GetObjectItem(obj, "n")->valueint, 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(obj, "ok")));
    cJSON_Delete(obj);
    cJSON_free(s);
}

static void test_render_levels(void **state)
{
    static const struct {
        enum log_level level;
        const char *name;
    } cases[] = {{LOG_DEBUG, "debug"},
                 {LOG_INFO, "info"},
                 {LOG_WARN, "warn"},
                 {LOG_ERROR, "error"},
                 {(enum log_level)42, "error"}};

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *s = log_render(cases[i].level, "m", NULL);
        cJSON *obj = cJSON_Parse(s);

        assert_non_null(obj);
        assert_str_field(obj, "level", cases[i].name);
        cJSON_Delete(obj);
        cJSON_free(s);
    }
}

static void test_render_null_and_odd_fields(void **state)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON *f = cJSON_CreateObject();
    cJSON *obj;
    char *s;

    (void)state;
    /* NULL msg and NULL fields. */
    s = log_render(LOG_INFO, NULL, NULL);
    obj = cJSON_Parse(s);
    assert_non_null(obj);
    assert_str_field(obj, "msg", "");
    assert_int_equal(cJSON_GetArraySize(obj), 4);
    cJSON_Delete(obj);
    cJSON_free(s);

    /* A non-object goes under "fields". */
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(1));
    s = log_render(LOG_INFO, "a", arr);
    obj = cJSON_Parse(s);
    assert_non_null(obj);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(obj, "fields")));
    cJSON_Delete(obj);
    cJSON_free(s);

    /* Caller keys that collide with ours are renamed, never duplicated. */
    cJSON_AddStringToObject(f, "msg", "theirs");
    cJSON_AddStringToObject(f, "level", "x");
    s = log_render(LOG_INFO, "ours", f);
    obj = cJSON_Parse(s);
    assert_non_null(obj);
    assert_str_field(obj, "msg", "ours");
    assert_str_field(obj, "level", "info");
    assert_str_field(obj, "fields.msg", "theirs");
    assert_str_field(obj, "fields.level", "x");
    assert_int_equal(cJSON_GetArraySize(obj), 6);
    cJSON_Delete(obj);
    cJSON_free(s);
}

static void test_program_name(void **state)
{
    char *s;
    cJSON *obj;

    (void)state;
    log_set_program(NULL);
    s = log_render(LOG_INFO, "m", NULL);
    obj = cJSON_Parse(s);
    assert_str_field(obj, "prog", "etcd-recovery");
    cJSON_Delete(obj);
    cJSON_free(s);
    log_set_program("test_log");
}

/* ---- writing and levels ----------------------------------------------------------------- */

static void test_event_writes_one_line_and_filters(void **state)
{
    char path[256], *buf = malloc(TEST_LOG_BUF);
    int fd = open_tmp(path, sizeof path);
    cJSON *obj;
    size_t len;

    (void)state;
    assert_non_null(buf);
    log_set_fd(fd);
    log_set_level(LOG_WARN);
    log_msg(LOG_INFO, "dropped %d", 1);
    log_event(LOG_DEBUG, "dropped", cJSON_CreateObject()); /* freed even when dropped */
    log_msg(LOG_WARN, "kept %s=%d", "x", 7);
    log_event(LOG_ERROR, "kept2", NULL);
    log_set_level(LOG_DEBUG);
    len = read_all(fd, buf, TEST_LOG_BUF);
    close(fd);
    log_set_fd(2);

    assert_true(len > 0 && buf[len - 1] == '\n');
    assert_non_null(strstr(buf, "\"msg\":\"kept x=7\""));
    assert_null(strstr(buf, "dropped"));
    /* exactly two lines, each valid JSON */
    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    *nl = '\0';
    obj = cJSON_Parse(buf);
    assert_non_null(obj);
    assert_str_field(obj, "level", "warn");
    cJSON_Delete(obj);
    obj = cJSON_Parse(nl + 1);
    assert_non_null(obj);
    assert_str_field(obj, "msg", "kept2");
    cJSON_Delete(obj);
    assert_ptr_equal(strchr(nl + 1, '\n'), buf + len - 1);
    free(buf);
}

static void test_msg_truncated_on_utf8_boundary(void **state)
{
    char path[256], *big = malloc(LOG_MAX_MESSAGE * 2), *buf = malloc(TEST_LOG_BUF);
    int fd = open_tmp(path, sizeof path);
    cJSON *obj;
    size_t len, m;

    (void)state;
    assert_non_null(big);
    assert_non_null(buf);
    /* 'a' then 3-byte characters so the cut lands inside one of them */
    big[0] = 'a';
    for (m = 1; m + 3 < LOG_MAX_MESSAGE * 2 - 1; m += 3)
        memcpy(big + m, "\xe2\x82\xac", 3);
    big[m] = '\0';
    log_set_fd(fd);
    log_msg(LOG_INFO, "%s", big);
    len = read_all(fd, buf, TEST_LOG_BUF);
    close(fd);
    log_set_fd(2);
    assert_true(len > 0);
    buf[len - 1] = '\0';
    obj = cJSON_Parse(buf);
    assert_non_null(obj);
    m = strlen(cJSON_GetObjectItem(obj, "msg")->valuestring);
    assert_true(m < LOG_MAX_MESSAGE);
    assert_int_equal((m - 1) % 3, 0); /* whole characters only */
    cJSON_Delete(obj);
    free(big);
    free(buf);
}

/* ---- LOG_LEVEL: in a fresh process ------------------------------------------------------- */

static const char *self_path;

static int child_main(void)
{
    /* LOG_LEVEL=debug in our env: debug lines are written. */
    log_set_program("child");
    log_msg(LOG_DEBUG, "child-debug");
    return 0;
}

static void run_child(const char *level_env, char *out, size_t cap)
{
    int p[2];
    pid_t pid;
    size_t len = 0;
    ssize_t n;
    int status;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *const argv[] = {(char *)"test_log", (char *)"--child", NULL};

        dup2(p[1], 2);
        if (level_env != NULL)
            setenv("LOG_LEVEL", level_env, 1);
        else
            unsetenv("LOG_LEVEL");
        /* argv[0], not /proc/self/exe: under valgrind that is valgrind itself. */
        execv(self_path, argv);
        _exit(127);
    }
    close(p[1]);
    while ((n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_log_level_env(void **state)
{
    char out[4096];

    (void)state;
    run_child("debug", out, sizeof out);
    assert_non_null(strstr(out, "\"msg\":\"child-debug\""));
    assert_non_null(strstr(out, "\"level\":\"debug\""));
    run_child("DEBUG", out, sizeof out);
    assert_non_null(strstr(out, "child-debug"));
    run_child(NULL, out, sizeof out); /* default info: dropped */
    assert_string_equal(out, "");
    run_child("error", out, sizeof out);
    assert_string_equal(out, "");
    run_child("bogus", out, sizeof out); /* unknown value: default stays */
    assert_string_equal(out, "");
}

/* ---- concurrency ------------------------------------------------------------------------- */

static void *writer(void *arg)
{
    long id = (long)arg;

    for (int i = 0; i < TEST_LOG_LINES; i++) {
        cJSON *f = cJSON_CreateObject();

        cJSON_AddNumberToObject(f, "thread", (double)id);
        cJSON_AddNumberToObject(f, "i", i);
        cJSON_AddStringToObject(f, "pad",
                                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        log_event(LOG_INFO, "concurrent", f);
    }
    return NULL;
}

static void test_concurrent_lines_never_interleave(void **state)
{
    pthread_t th[TEST_LOG_THREADS];
    int seen[TEST_LOG_THREADS] = {0};
    char path[256], *buf = malloc(TEST_LOG_BUF), *line, *save = NULL;
    int fd = open_tmp(path, sizeof path), lines = 0;

    (void)state;
    assert_non_null(buf);
    log_set_fd(fd);
    for (long i = 0; i < TEST_LOG_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)i), 0);
    for (int i = 0; i < TEST_LOG_THREADS; i++)
        pthread_join(th[i], NULL);
    read_all(fd, buf, TEST_LOG_BUF);
    close(fd);
    log_set_fd(2);
    for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        cJSON *obj = cJSON_Parse(line);
        int t;

        assert_non_null(obj);
        t = cJSON_GetObjectItem(obj, "thread")->valueint;
        assert_true(t >= 0 && t < TEST_LOG_THREADS);
        assert_int_equal(cJSON_GetObjectItem(obj, "i")->valueint, seen[t]);
        seen[t]++;
        lines++;
        cJSON_Delete(obj);
    }
    assert_int_equal(lines, TEST_LOG_THREADS * TEST_LOG_LINES);
    free(buf);
}

/* ---- allocation failure ------------------------------------------------------------------ */

static int fail_at = -1; /* allocation number that fails (0-based); -1: never */
static int alloc_count;

static void *failing_malloc(size_t n)
{
    if (alloc_count++ == fail_at)
        return NULL;
    return malloc(n);
}

static void test_allocation_failures_fall_back(void **state)
{
    cJSON_Hooks hooks = {failing_malloc, free};
    cJSON_Hooks plain = {malloc, free};
    char path[256], *buf = malloc(TEST_LOG_BUF);
    int total, fallbacks = 0;

    (void)state;
    assert_non_null(buf);
    cJSON_InitHooks(&hooks);
    /* Count the allocations of one full line, then make each one fail in turn: every time a
     * complete, valid line must still come out (the minimal one, without the fields). */
    total = -1;
    for (int n = -1; n < total || total < 0; n++) {
        int fd = open_tmp(path, sizeof path);
        cJSON *f, *obj;
        size_t len;

        fail_at = -1;
        f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "k", "v");
        alloc_count = 0;
        fail_at = n;
        log_set_fd(fd);
        log_event(LOG_ERROR, "quote\" and \x01 ctl", f);
        fail_at = -1;
        if (n < 0)
            total = alloc_count;
        len = read_all(fd, buf, TEST_LOG_BUF);
        close(fd);
        assert_true(len > 0 && buf[len - 1] == '\n');
        assert_null(memchr(buf, '\n', len - 1));
        buf[len - 1] = '\0';
        obj = cJSON_Parse(buf);
        assert_non_null(obj);
        assert_str_field(obj, "msg", "quote\" and \x01 ctl");
        assert_str_field(obj, "level", "error");
        assert_str_field(obj, "prog", "test_log");
        assert_rfc3339_ms(cJSON_GetObjectItem(obj, "time")->valuestring);
        if (n < 0)
            assert_str_field(obj, "k", "v");
        else if (cJSON_GetObjectItem(obj, "k") == NULL)
            fallbacks++;
        cJSON_Delete(obj);
    }
    cJSON_InitHooks(&plain);
    log_set_fd(2);
    assert_true(total >= 4);
    assert_int_equal(fallbacks, total);
    free(buf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_order_and_types),
        cmocka_unit_test(test_render_levels),
        cmocka_unit_test(test_render_null_and_odd_fields),
        cmocka_unit_test(test_program_name),
        cmocka_unit_test(test_event_writes_one_line_and_filters),
        cmocka_unit_test(test_msg_truncated_on_utf8_boundary),
        cmocka_unit_test(test_log_level_env),
        cmocka_unit_test(test_concurrent_lines_never_interleave),
        cmocka_unit_test(test_allocation_failures_fall_back),
    };

    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main();
    return cmocka_run_group_tests_name("log", tests, setup, teardown);
}
