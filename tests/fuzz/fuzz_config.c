/* fuzz_config.c - libFuzzer target for common/config.c: the input, split on NUL bytes, becomes
 * an env value (first piece) and argv (the rest); config_parse runs over a table with every
 * type, and each piece also goes through the value helpers and the --initial-cluster parser. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "config.h"
#include "fuzz_input.h"

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_helpers(const char *s)
{
    struct config_list l = {0}, names = {0}, urls = {0};
    char err[256];
    uint64_t v;
    bool b;

    (void)config_parse_u64(s, 0, UINT64_MAX, &v);
    (void)config_parse_u64(s, 10, 1000, &v);
    (void)config_parse_duration_ms(s, &v);
    (void)config_parse_bool(s, &b);
    if (config_parse_list(s, &l) == 0 && (l.n == 0 || l.n > CONFIG_MAX_LIST))
        abort();
    for (size_t i = 0; i < l.n; i++) {
        if (l.items[i][0] == '\0' || strlen(l.items[i]) >= CONFIG_MAX_VALUE)
            abort();
    }
    config_list_free(&l);
    if (config_parse_initial_cluster_err(s, &names, &urls, err, sizeof err) == 0) {
        if (names.n != urls.n || names.n == 0)
            abort();
        for (size_t i = 0; i < names.n; i++) {
            if (names.items[i][0] == '\0' || urls.items[i][0] == '\0')
                abort();
            for (size_t j = 0; j < i; j++) {
                if (strcmp(names.items[i], names.items[j]) == 0)
                    abort();
            }
        }
    } else if (strchr(err, '\n') != NULL) {
        abort();
    }
    config_list_free(&names);
    config_list_free(&urls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    struct config_string str = {0};
    struct config_list list = {0};
    bool flag = true;
    uint64_t num = 5, big = 0, dur = 1000;
    const struct config_option opts[] = {
        {"str", {"FUZZ_CFG_STR", NULL, NULL}, CONFIG_STRING, &str, 0, 0, "a string", "S"},
        {"flag", {"FUZZ_CFG_FLAG", NULL, NULL}, CONFIG_BOOL, &flag, 0, 0, "a bool", NULL},
        {"num", {"FUZZ_CFG_NUM", NULL, NULL}, CONFIG_UINT, &num, 1, 65535, "a number", "N"},
        {"big", {NULL, NULL, NULL}, CONFIG_UINT, &big, 0, 0, "unbounded", "N"},
        {"dur",
         {"FUZZ_CFG_DUR", NULL, NULL},
         CONFIG_DURATION,
         &dur,
         100,
         3600000,
         "a duration",
         "D"},
        {"list",
         {"FUZZ_CFG_LIST", "FUZZ_CFG_LIST2", NULL},
         CONFIG_LIST,
         &list,
         0,
         0,
         "a list",
         "L"},
    };
    static const char *const envs[] = {"FUZZ_CFG_STR", "FUZZ_CFG_FLAG", "FUZZ_CFG_NUM",
                                       "FUZZ_CFG_DUR", "FUZZ_CFG_LIST"};
    char *argv[FUZZ_MAX_ARGS + 2], *copy, *env_value;
    char err[256];
    size_t pos = 0;
    int argc = 1, rc;

    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    /* NUL-terminated copy: pieces end at each NUL, the last at the end */
    copy = fuzz_copy_str(data, size);
    if (copy == NULL)
        return 0;
    env_value = copy;
    pos = strlen(copy) + 1;
    argv[0] = (char *)"fuzz";
    while (pos <= size && argc <= FUZZ_MAX_ARGS) {
        argv[argc++] = copy + pos;
        pos += strlen(copy + pos) + 1;
    }
    argv[argc] = NULL;

    /* the first piece feeds one env variable, chosen by its length */
    setenv(envs[strlen(env_value) % ARRAY_SIZE(envs)], env_value, 1);
    check_helpers(env_value);
    for (int i = 1; i < argc; i++)
        check_helpers(argv[i]);

    rc = config_parse(opts, ARRAY_SIZE(opts), argc, argv, err, sizeof err);
    if (rc != CONFIG_OK && rc != CONFIG_HELP && rc != CONFIG_VERSION && rc != CONFIG_ERROR)
        abort();
    if (rc == CONFIG_ERROR && (err[0] == '\0' || strchr(err, '\n') != NULL))
        abort();
    if (rc == CONFIG_OK && (num < 1 || dur < 100 || dur > 3600000 || list.n > CONFIG_MAX_LIST ||
                            strlen(str.value) >= CONFIG_MAX_VALUE))
        abort();
    if (devnull != NULL)
        config_usage(devnull, "fuzz", "fuzzing", opts, ARRAY_SIZE(opts));

    for (size_t i = 0; i < ARRAY_SIZE(envs); i++)
        unsetenv(envs[i]);
    config_list_free(&list);
    free(copy);
    return 0;
}
