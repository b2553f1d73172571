/* test_config.c - unit tests for common/config.c: the value helpers at their boundaries, the
 * flag/env parser (both flag forms, --no-, precedence, every error with its message, help and
 * version) and usage text. Every env variable a test sets is unset in the teardown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "config.h"

/* ---- a table exercising every type ------------------------------------------------------ */

struct fixture {
    struct config_string data_dir;
    struct config_string name;
    bool io_uring;
    bool verbose;
    uint64_t port;
    uint64_t probe_ms;
    struct config_list endpoints;
    struct config_option opts[7];
};

static const char *const test_envs[] = {
    "TEST_CFG_DATA_DIR", "ETCD_DATA_DIR",  "TEST_CFG_NAME",       "TEST_CFG_IO_URING",
    "TEST_CFG_PORT",     "TEST_CFG_PROBE", "TEST_CFG_ENDPOINTS1", "TEST_CFG_ENDPOINTS2"};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    assert_non_null(f);
    f->io_uring = true;
    f->port = 8080;
    f->probe_ms = 5000;
    snprintf(f->name.value, sizeof f->name.value, "default-name");
    {
        const struct config_option opts[] = {
            {"data-dir",
             {"TEST_CFG_DATA_DIR", "ETCD_DATA_DIR", NULL},
             CONFIG_STRING,
             &f->data_dir,
             0,
             0,
             "etcd data directory",
             "DIR"},
            {"name",
             {"TEST_CFG_NAME", NULL, NULL},
             CONFIG_STRING,
             &f->name,
             0,
             0,
             "member name",
             "NAME"},
            {"io-uring",
             {"TEST_CFG_IO_URING", NULL, NULL},
             CONFIG_BOOL,
             &f->io_uring,
             0,
             0,
             "use io_uring",
             NULL},
            {"verbose", {NULL, NULL, NULL}, CONFIG_BOOL, &f->verbose, 0, 0, "chatty", NULL},
            {"port",
             {"TEST_CFG_PORT", NULL, NULL},
             CONFIG_UINT,
             &f->port,
             1,
             65535,
             "listen port",
             "PORT"},
            {"probe-interval",
             {"TEST_CFG_PROBE", NULL, NULL},
             CONFIG_DURATION,
             &f->probe_ms,
             100,
             60000,
             "probe period",
             "DURATION"},
            {"endpoints",
             {"TEST_CFG_ENDPOINTS1", "TEST_CFG_ENDPOINTS2", NULL},
             CONFIG_LIST,
             &f->endpoints,
             0,
             0,
             "etcd client URLs",
             "URLS"},
        };
        memcpy(f->opts, opts, sizeof opts);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < ARRAY_SIZE(test_envs); i++)
        unsetenv(test_envs[i]);
    config_list_free(&f->endpoints);
    free(f);
    return 0;
}

#define NOPTS(f) ARRAY_SIZE((f)->opts)

/* Runs config_parse over a NULL-terminated list of arguments (argv[0] added). */
static int parse(struct fixture *f, char *err, size_t err_len, ...)
{
    char *argv[32] = {(char *)"prog"};
    int argc = 1;
    va_list ap;

    va_start(ap, err_len);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return config_parse(f->opts, NOPTS(f), argc, argv, err, err_len);
}

/* Expect CONFIG_ERROR with exactly this reason. */
#define EXPECT_ERR(f, want, ...)                                                                   \
    do {                                                                                           \
        char err_[512];                                                                            \
        assert_int_equal(parse((f), err_, sizeof err_, __VA_ARGS__, NULL), CONFIG_ERROR);          \
        assert_string_equal(err_, (want));                                                         \
    } while (0)

/* ---- helpers: numbers ------------------------------------------------------------------- */

static void test_u64(void **state)
{
    static const char *const bad[] = {"",    "+1",  "-1", " 1",  "1 ",  "1x", "0x10",
                                      "1e3", "1.0", "１", "\t1", "1\n", "--"};
    uint64_t v = 42;

    (void)state;
    assert_int_equal(config_parse_u64("0", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_u64("007", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(config_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(config_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(config_parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(config_parse_u64("99999999999999999999999x", 0, UINT64_MAX, &v), -EINVAL);
    /* range boundaries */
    assert_int_equal(config_parse_u64("1", 1, 10, &v), 0);
    assert_int_equal(config_parse_u64("10", 1, 10, &v), 0);
    assert_int_equal(v, 10);
    v = 42;
    assert_int_equal(config_parse_u64("0", 1, 10, &v), -ERANGE);
    assert_int_equal(config_parse_u64("11", 1, 10, &v), -ERANGE);
    assert_int_equal(v, 42); /* untouched on error */
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(config_parse_u64(bad[i], 0, UINT64_MAX, &v), -EINVAL);
    assert_int_equal(config_parse_u64(NULL, 0, 1, &v), -EINVAL);
    assert_int_equal(config_parse_u64("1", 0, 1, NULL), -EINVAL);
}

static void test_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } good[] = {{"250ms", 250}, {"5s", 5000}, {"2m", 120000},   {"1h", 3600000}, {"7", 7000},
                {"0", 0},       {"0ms", 0},   {"1000ms", 1000}, {"007s", 7000}};
    static const char *const bad[] = {"",   "5x",  "s",   "ms",    "1.5s", "-1s", " 5s", "5s ",
                                      "5S", "5 s", "5sm", "1m30s", "5d",   "+5s", "5mss"};
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        v = 1;
        assert_int_equal(config_parse_duration_ms(good[i].s, &v), 0);
        assert_true(v == good[i].ms);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(config_parse_duration_ms(bad[i], &v), -EINVAL);
    /* overflow: of the number itself, and of the unit multiplication */
    assert_int_equal(config_parse_duration_ms("99999999999999999999ms", &v), -ERANGE);
    assert_int_equal(config_parse_duration_ms("99999999999999999999x", &v), -EINVAL);
    assert_int_equal(config_parse_duration_ms("18446744073709551615s", &v), -ERANGE);
    assert_int_equal(config_parse_duration_ms("5124095576031h", &v), -ERANGE);
    assert_int_equal(config_parse_duration_ms("5124095576030h", &v), 0);
    assert_true(v == 5124095576030ull * 3600000ull);
    assert_int_equal(config_parse_duration_ms(NULL, &v), -EINVAL);
}

static void test_bool(void **state)
{
    static const char *const yes[] = {"1", "true", "TRUE", "True", "yes", "YES"};
    static const char *const no[] = {"0", "false", "FALSE", "no", "No"};
    static const char *const bad[] = {"", "2", "yess", "t", "y", "on", " true", "true "};
    bool b;

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        b = false;
        assert_int_equal(config_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
        b = true;
        assert_int_equal(config_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(config_parse_bool(bad[i], &b), -EINVAL);
    assert_int_equal(config_parse_bool(NULL, &b), -EINVAL);
}

/* ---- helpers: lists --------------------------------------------------------------------- */

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_list(void **state)
{
    static const char *const bad[] = {"", " ", "a,,b", ",a", "a,", "a, ,b", ","};
    struct config_list l = {0};
    char buf[CONFIG_MAX_LIST * 3 + 8];
    char *big;

    (void)state;
    assert_int_equal(config_parse_list(" a , b\t,c ", &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0], "a");
    assert_string_equal(l.items[1], "b");
    assert_string_equal(l.items[2], "c");
    assert_false(l.set);
    /* errors leave the earlier result alone */
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(config_parse_list(bad[i], &l), -EINVAL);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.items[2], "c");
    }
    assert_int_equal(config_parse_list(NULL, &l), -EINVAL);
    /* a second parse replaces (and frees) the first */
    assert_int_equal(config_parse_list("x", &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0], "x");

    /* exactly CONFIG_MAX_LIST items, then one more */
    buf[0] = '\0';
    for (int i = 0; i < CONFIG_MAX_LIST; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%c", i ? "," : "", 'a' + i);
    assert_int_equal(config_parse_list(buf, &l), 0);
    assert_int_equal(l.n, CONFIG_MAX_LIST);
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ",z");
    assert_int_equal(config_parse_list(buf, &l), -ERANGE);
    assert_int_equal(l.n, CONFIG_MAX_LIST);

    /* an item of CONFIG_MAX_VALUE - 1 bytes is fine, CONFIG_MAX_VALUE is not */
    big = repeat('u', CONFIG_MAX_VALUE - 1);
    assert_int_equal(config_parse_list(big, &l), 0);
    assert_int_equal(strlen(l.items[0]), CONFIG_MAX_VALUE - 1);
    free(big);
    big = repeat('u', CONFIG_MAX_VALUE);
    assert_int_equal(config_parse_list(big, &l), -ERANGE);
    free(big);
    config_list_free(&l);
    assert_int_equal(l.n, 0);
    config_list_free(&l); /* twice is harmless */
    config_list_free(NULL);
}

static void test_initial_cluster(void **state)
{
    static const struct {
        const char *s;
        int rc;
        const char *err;
    } bad[] = {
        {"n1", -EINVAL, "entry \"n1\" is not name=url"},
        {"=u1", -EINVAL, "entry \"=u1\" has an empty name"},
        {"n1=", -EINVAL, "entry \"n1=\" has an empty url"},
        {"n1= ", -EINVAL, "entry \"n1=\" has an empty url"},
        {"n1=u1,n1=u2", -EINVAL, "duplicate member name \"n1\""},
        {"n1=u1,,n2=u2", -EINVAL, "empty item in list \"n1=u1,,n2=u2\""},
        {"", -EINVAL, "empty item in list \"\""},
    };
    struct config_list names = {0}, urls = {0};
    char err[256], buf[CONFIG_MAX_LIST * 8 + 16];

    (void)state;
    assert_int_equal(
        config_parse_initial_cluster("etcd-0=https://10.0.0.1:2380, etcd-1 = https://10.0.0.2:2380",
                                     &names, &urls),
        0);
    assert_int_equal(names.n, 2);
    assert_int_equal(urls.n, 2);
    assert_string_equal(names.items[0], "etcd-0");
    assert_string_equal(urls.items[0], "https://10.0.0.1:2380");
    assert_string_equal(names.items[1], "etcd-1");
    assert_string_equal(urls.items[1], "https://10.0.0.2:2380");
    /* the url may itself contain '=' (only the first one splits) */
    assert_int_equal(config_parse_initial_cluster("a=http://h/?x=y", &names, &urls), 0);
    assert_int_equal(names.n, 1);
    assert_string_equal(urls.items[0], "http://h/?x=y");
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(config_parse_initial_cluster_err(bad[i].s, &names, &urls, err, sizeof err),
                         bad[i].rc);
        assert_string_equal(err, bad[i].err);
        assert_int_equal(names.n, 1); /* untouched */
        assert_string_equal(names.items[0], "a");
    }
    buf[0] = '\0';
    for (int i = 0; i <= CONFIG_MAX_LIST; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%sn%d=u", i ? "," : "", i);
    assert_int_equal(config_parse_initial_cluster_err(buf, &names, &urls, err, sizeof err),
                     -ERANGE);
    assert_string_equal(err, "too many items in list (max 16)");
    assert_int_equal(config_parse_initial_cluster(NULL, &names, &urls), -EINVAL);
    assert_int_equal(config_parse_initial_cluster("a=b", NULL, &urls), -EINVAL);
    config_list_free(&names);
    config_list_free(&urls);
}

/* ---- config_parse: forms and precedence ------------------------------------------------- */

static void test_defaults_untouched(void **state)
{
    struct fixture *f = *state;
    char err[256];

    assert_int_equal(parse(f, err, sizeof err, NULL), CONFIG_OK);
    assert_string_equal(err, "");
    assert_string_equal(f->data_dir.value, "");
    assert_false(f->data_dir.set);
    assert_string_equal(f->name.value, "default-name");
    assert_false(f->name.set);
    assert_true(f->io_uring);
    assert_int_equal(f->port, 8080);
    assert_int_equal(f->probe_ms, 5000);
    assert_int_equal(f->endpoints.n, 0);
    assert_false(f->endpoints.set);
}

static void test_both_flag_forms(void **state)
{
    struct fixture *f = *state;
    char err[256];

    assert_int_equal(parse(f, err, sizeof err, "--data-dir", "/var/lib/data", "--name=etcd-1",
                           "--port", "1", "--probe-interval=250ms", "--endpoints",
                           "https://a:2379, https://b:2379", "--no-io-uring", "--verbose", NULL),
                     CONFIG_OK);
    assert_string_equal(f->data_dir.value, "/var/lib/data");
    assert_true(f->data_dir.set);
    assert_string_equal(f->name.value, "etcd-1");
    assert_true(f->name.set);
    assert_int_equal(f->port, 1);
    assert_int_equal(f->probe_ms, 250);
    assert_int_equal(f->endpoints.n, 2);
    assert_string_equal(f->endpoints.items[1], "https://b:2379");
    assert_true(f->endpoints.set);
    assert_false(f->io_uring);
    assert_true(f->verbose);
}

static void test_bool_forms(void **state)
{
    struct fixture *f = *state;
    char err[256];

    assert_int_equal(parse(f, err, sizeof err, "--io-uring=false", "--verbose=yes", NULL),
                     CONFIG_OK);
    assert_false(f->io_uring);
    assert_true(f->verbose);
    assert_int_equal(parse(f, err, sizeof err, "--io-uring", NULL), CONFIG_OK);
    assert_true(f->io_uring);
    /* a bool never takes the next argument as its value */
    EXPECT_ERR(f, "unexpected argument \"false\" (flags only)", "--io-uring", "false");
    EXPECT_ERR(f, "--no-io-uring: takes no value", "--no-io-uring=true");
    EXPECT_ERR(f, "--io-uring: invalid boolean \"maybe\" (use true or false)", "--io-uring=maybe");
    /* --no- only exists for bools */
    EXPECT_ERR(f, "unknown flag \"--no-port\"", "--no-port");
    EXPECT_ERR(f, "unknown flag \"--no-\"", "--no-");
}

static void test_values_that_look_odd(void **state)
{
    struct fixture *f = *state;
    char err[256];

    /* a single-dash value is a value; "=" inside a value is kept */
    assert_int_equal(parse(f, err, sizeof err, "--data-dir", "-odd", "--name=a=b", NULL),
                     CONFIG_OK);
    assert_string_equal(f->data_dir.value, "-odd");
    assert_string_equal(f->name.value, "a=b");
}

static void test_precedence(void **state)
{
    struct fixture *f = *state;
    char err[256];

    setenv("TEST_CFG_DATA_DIR", "/from/env1", 1);
    setenv("ETCD_DATA_DIR", "/from/env2", 1);
    setenv("TEST_CFG_PORT", "2379", 1);
    setenv("TEST_CFG_IO_URING", "false", 1);
    setenv("TEST_CFG_PROBE", "1m", 1);
    setenv("TEST_CFG_ENDPOINTS2", "e2a,e2b", 1);
    /* env beats default; the first set env variable wins; empty counts as unset */
    setenv("TEST_CFG_ENDPOINTS1", "", 1);
    assert_int_equal(parse(f, err, sizeof err, NULL), CONFIG_OK);
    assert_string_equal(f->data_dir.value, "/from/env1");
    assert_true(f->data_dir.set);
    assert_int_equal(f->port, 2379);
    assert_false(f->io_uring);
    assert_int_equal(f->probe_ms, 60000);
    assert_int_equal(f->endpoints.n, 2);
    assert_string_equal(f->endpoints.items[0], "e2a");
    assert_string_equal(f->name.value, "default-name");

    /* second env name when the first is unset */
    unsetenv("TEST_CFG_DATA_DIR");
    setenv("TEST_CFG_ENDPOINTS1", "e1", 1);
    assert_int_equal(parse(f, err, sizeof err, NULL), CONFIG_OK);
    assert_string_equal(f->data_dir.value, "/from/env2");
    assert_int_equal(f->endpoints.n, 1);
    assert_string_equal(f->endpoints.items[0], "e1");

    /* flags beat env, and a bad env value is not even read when the flag is given */
    setenv("TEST_CFG_PORT", "garbage", 1);
    assert_int_equal(parse(f, err, sizeof err, "--data-dir=/from/flag", "--port", "3", "--io-uring",
                           "--endpoints", "f1", NULL),
                     CONFIG_OK);
    assert_string_equal(f->data_dir.value, "/from/flag");
    assert_int_equal(f->port, 3);
    assert_true(f->io_uring);
    assert_int_equal(f->endpoints.n, 1);
    assert_string_equal(f->endpoints.items[0], "f1");
}

static void test_list_default_replaced(void **state)
{
    struct fixture *f = *state;
    char err[256];

    f->endpoints.items[0] = strdup("https://default:2379");
    f->endpoints.n = 1;
    assert_int_equal(parse(f, err, sizeof err, NULL), CONFIG_OK);
    assert_int_equal(f->endpoints.n, 1);
    assert_false(f->endpoints.set);
    /* replaced: the old item is freed (ASan/valgrind would see a leak otherwise) */
    assert_int_equal(parse(f, err, sizeof err, "--endpoints=x,y", NULL), CONFIG_OK);
    assert_int_equal(f->endpoints.n, 2);
    assert_true(f->endpoints.set);
}

/* ---- config_parse: errors --------------------------------------------------------------- */

static void test_errors_command_line(void **state)
{
    struct fixture *f = *state;

    EXPECT_ERR(f, "unknown flag \"--nope\"", "--nope");
    EXPECT_ERR(f, "unknown flag \"--nope=1\"", "--nope=1");
    EXPECT_ERR(f, "unknown flag \"-x\" (long flags take two dashes)", "-x");
    EXPECT_ERR(f, "unknown flag \"-port\" (long flags take two dashes)", "-port", "1");
    EXPECT_ERR(f, "unexpected argument \"extra\" (flags only)", "extra");
    EXPECT_ERR(f, "unexpected argument \"extra\" (flags only)", "--port", "1", "extra");
    EXPECT_ERR(f, "unexpected argument \"-\" (flags only)", "-");
    EXPECT_ERR(f, "unexpected argument \"--\" (flags only)", "--");
    EXPECT_ERR(f, "unknown flag \"--=x\"", "--=x");
    EXPECT_ERR(f, "--port: missing value", "--port");
    EXPECT_ERR(f, "--data-dir: missing value", "--data-dir", "--port", "1");
    EXPECT_ERR(f, "--port: given more than once", "--port", "1", "--port=2");
    EXPECT_ERR(f, "--io-uring: given more than once", "--io-uring", "--no-io-uring");
    EXPECT_ERR(f, "--endpoints: given more than once", "--endpoints=a", "--endpoints=b");
    EXPECT_ERR(f, "--data-dir: empty value", "--data-dir=");
    EXPECT_ERR(f, "--port: invalid number \"12a\" (digits only)", "--port", "12a");
    EXPECT_ERR(f, "--port: invalid number \"-1\" (digits only)", "--port=-1");
    EXPECT_ERR(f, "--port: \"0\" out of range (1..65535)", "--port", "0");
    EXPECT_ERR(f, "--port: \"65536\" out of range (1..65535)", "--port", "65536");
    EXPECT_ERR(f, "--port: \"99999999999999999999\" out of range (1..65535)", "--port",
               "99999999999999999999");
    EXPECT_ERR(f, "--probe-interval: invalid duration \"5x\" (use 250ms, 5s, 2m)",
               "--probe-interval", "5x");
    EXPECT_ERR(f, "--probe-interval: duration \"99ms\" out of range (100ms..1m)",
               "--probe-interval=99ms");
    EXPECT_ERR(f, "--probe-interval: duration \"61s\" out of range (100ms..1m)",
               "--probe-interval=61s");
    EXPECT_ERR(f, "--endpoints: empty item in list \"a,,b\"", "--endpoints", "a,,b");
    EXPECT_ERR(f, "--endpoints: too many items in list (max 16)", "--endpoints",
               "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17");
}

static void test_boundaries_accepted(void **state)
{
    struct fixture *f = *state;
    char err[256];

    assert_int_equal(parse(f, err, sizeof err, "--port=65535", "--probe-interval=1m", NULL),
                     CONFIG_OK);
    assert_int_equal(f->port, 65535);
    assert_int_equal(f->probe_ms, 60000);
    assert_int_equal(parse(f, err, sizeof err, "--port=1", "--probe-interval=100ms", NULL),
                     CONFIG_OK);
    assert_int_equal(f->probe_ms, 100);
}

static void test_errors_env(void **state)
{
    struct fixture *f = *state;
    char *big = repeat('d', CONFIG_MAX_VALUE);
    char err[256];

    setenv("ETCD_DATA_DIR", big, 1);
    EXPECT_ERR(f, "ETCD_DATA_DIR: value too long (max 4095 bytes)", "--port=1");
    big[CONFIG_MAX_VALUE - 1] = '\0'; /* the longest allowed value */
    setenv("ETCD_DATA_DIR", big, 1);
    assert_int_equal(parse(f, err, sizeof err, NULL), CONFIG_OK);
    assert_int_equal(strlen(f->data_dir.value), CONFIG_MAX_VALUE - 1);
    unsetenv("ETCD_DATA_DIR");
    free(big);

    setenv("TEST_CFG_PROBE", "5x", 1);
    EXPECT_ERR(f, "TEST_CFG_PROBE: invalid duration \"5x\" (use 250ms, 5s, 2m)", "--port=1");
    unsetenv("TEST_CFG_PROBE");
    setenv("TEST_CFG_IO_URING", "nope", 1);
    EXPECT_ERR(f, "TEST_CFG_IO_URING: invalid boolean \"nope\" (use true or false)", "--port=1");
    unsetenv("TEST_CFG_IO_URING");
    setenv("TEST_CFG_PORT", "0", 1);
    EXPECT_ERR(f, "TEST_CFG_PORT: \"0\" out of range (1..65535)", "--verbose");
    unsetenv("TEST_CFG_PORT");
    setenv("TEST_CFG_ENDPOINTS1", "a,", 1);
    EXPECT_ERR(f, "TEST_CFG_ENDPOINTS1: empty item in list \"a,\"", "--verbose");
    /* a control character in a value never makes the reason span two lines */
    setenv("TEST_CFG_ENDPOINTS1", "a\n,", 1);
    EXPECT_ERR(f, "TEST_CFG_ENDPOINTS1: empty item in list \"a?,\"", "--verbose");
}

static void test_quote_is_bounded(void **state)
{
    struct fixture *f = *state;
    char *big = repeat('9', 300), arg[320];
    char err[512];

    big[299] = 'x';
    snprintf(arg, sizeof arg, "--port=%s", big);
    assert_int_equal(parse(f, err, sizeof err, arg, NULL), CONFIG_ERROR);
    assert_true(strlen(err) < 120);
    assert_non_null(strstr(err, "...\" (digits only)"));
    /* a tiny or missing error buffer is fine */
    assert_int_equal(parse(f, err, 5, arg, NULL), CONFIG_ERROR);
    assert_int_equal(strlen(err), 4);
    assert_int_equal(parse(f, NULL, 0, arg, NULL), CONFIG_ERROR);
    free(big);
}

static void test_help_and_version(void **state)
{
    struct fixture *f = *state;
    char err[256];

    assert_int_equal(parse(f, err, sizeof err, "--help", NULL), CONFIG_HELP);
    assert_int_equal(parse(f, err, sizeof err, "-h", NULL), CONFIG_HELP);
    assert_int_equal(parse(f, err, sizeof err, "--version", NULL), CONFIG_VERSION);
    /* answered when met: before a later bad flag, after an earlier good one */
    assert_int_equal(parse(f, err, sizeof err, "--port=2", "--help", "--bogus", NULL), CONFIG_HELP);
    assert_int_equal(parse(f, err, sizeof err, "--version", "--help", NULL), CONFIG_VERSION);
    /* an earlier error is still reported */
    EXPECT_ERR(f, "unknown flag \"--bogus\"", "--bogus", "--help");
    /* help is answered even when the environment holds a bad value */
    setenv("TEST_CFG_PORT", "bad", 1);
    assert_int_equal(parse(f, err, sizeof err, "-h", NULL), CONFIG_HELP);
    /* --help=x is not help */
    unsetenv("TEST_CFG_PORT");
    EXPECT_ERR(f, "unknown flag \"--help=x\"", "--help=x");
}

static void test_table_limits(void **state)
{
    struct fixture *f = *state;
    char *argv[] = {(char *)"prog", NULL};
    char err[256];

    assert_int_equal(config_parse(f->opts, CONFIG_MAX_OPTIONS + 1, 1, argv, err, sizeof err),
                     CONFIG_ERROR);
    assert_non_null(strstr(err, "option table too large"));
    assert_int_equal(config_parse(NULL, 0, 1, argv, err, sizeof err), CONFIG_OK);
    assert_int_equal(config_parse(NULL, 0, 0, NULL, err, sizeof err), CONFIG_OK);
    /* argc larger than the NULL-terminated argv: stops at NULL */
    assert_int_equal(config_parse(f->opts, NOPTS(f), 5, argv, err, sizeof err), CONFIG_OK);
}

/* ---- usage ------------------------------------------------------------------------------ */

static void test_usage(void **state)
{
    static const char *const want[] = {
        "usage: reset-member [flags]\n",
        "decides and prepares\n",
        "--data-dir DIR",
        "etcd data directory (env TEST_CFG_DATA_DIR, ETCD_DATA_DIR) (default none)\n",
        "member name (env TEST_CFG_NAME) (default \"default-name\")\n",
        "--[no-]io-uring",
        "use io_uring (env TEST_CFG_IO_URING) (default true)\n",
        "--[no-]verbose",
        "chatty (default false)\n",
        "--port PORT",
        "listen port (env TEST_CFG_PORT) (default 8080)\n",
        "--probe-interval DURATION",
        "probe period (env TEST_CFG_PROBE) (default 250ms)\n",
        "--endpoints URLS",
        "(env TEST_CFG_ENDPOINTS1, TEST_CFG_ENDPOINTS2) (default \"a,b\")\n",
        "-h, --help",
        "--version",
    };
    struct fixture *f = *state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out;

    f->probe_ms = 250;
    assert_int_equal(config_parse_list("a,b", &f->endpoints), 0);
    out = open_memstream(&buf, &len);
    assert_non_null(out);
    config_usage(out, "reset-member", "decides and prepares", f->opts, NOPTS(f));
    fclose(out);
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        if (strstr(buf, want[i]) == NULL)
            fail_msg("usage lacks \"%s\":\n%s", want[i], buf);
    }
    free(buf);

    /* durations render in their largest whole unit */
    f->probe_ms = 7200000;
    out = open_memstream(&buf, &len);
    config_usage(out, NULL, NULL, f->opts, NOPTS(f));
    fclose(out);
    assert_non_null(strstr(buf, "(default 2h)"));
    assert_non_null(strstr(buf, "usage: program [flags]"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_initial_cluster),
        cmocka_unit_test_setup_teardown(test_defaults_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_flag_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_that_look_odd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_default_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_command_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boundaries_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quote_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
    };

    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
