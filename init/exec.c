/* exec.c - `reset-member exec`: starts etcd with the state reset-member's init run wrote, on
 * images without a shell (the official etcd images are distroless).
 *
 * Strict parsers of the env and state files (act.c/restore.c write them), the flags, one JSON
 * log line and execv(). What the state is was decided by the init container (main.c). */
#include "exec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "array.h"
#include "config.h"
#include "log.h"

#define EXEC_EXIT_OK 0
#define EXEC_EXIT_FAILED 1
#define EXEC_EXIT_USAGE 2
#define EXEC_DEFAULT_STATE_FILE "/etc/etcd/clusterstate/state"

static const char exec_summary[] =
    "reset-member exec [--env-file FILE | --state-file FILE] -- /ABSOLUTE/PROGRAM [ARGS...]\n"
    "Start etcd with the state reset-member's init run wrote, without a shell: read the env\n"
    "file (" EXEC_ENV_STATE " and " EXEC_ENV_CLUSTER " lines only, never sourced) or,\n"
    "without --env-file, the one-word state file; set those variables over the environment;\n"
    "execv() the program (an absolute path: no PATH search). A missing or malformed file\n"
    "exits 1 without starting the program (the kubelet restarts the container); usage: 2.";

static bool valid_state(const char *v, size_t n)
{
    return (n == 3 && memcmp(v, "new", 3) == 0) || (n == 8 && memcmp(v, "existing", 8) == 0);
}

int exec_parse_state(const char *buf, size_t len, struct exec_env *out, char *err, size_t err_len)
{
    size_t n = len;

    memset(out, 0, sizeof(*out));
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (!valid_state(buf, n))
        return act_fail(err, err_len, -EINVAL, "state file: want \"new\" or \"existing\"");
    memcpy(out->state, buf, n);
    return 0;
}

/* One "NAME=value" line (without its newline) into out; seen tracks repeats. */
static int parse_line(const char *line, size_t n, struct exec_env *out, bool seen[2], char *err,
                      size_t err_len)
{
    const char *eq = memchr(line, '=', n);
    size_t name_len, vlen;
    const char *v;
    char quote[CONFIG_ERR_QUOTE + 1];
    int which;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c <= 0x20 || c == 0x7f) {
            snprintf(err, err_len,
                     "env file: byte 0x%02x in a line (no spaces, tabs, CR or "
                     "control bytes; no quoting)",
                     c);
            return -EINVAL;
        }
    }
    snprintf(quote, sizeof(quote), "%.*s", (int)(n < CONFIG_ERR_QUOTE ? n : CONFIG_ERR_QUOTE),
             line);
    if (!eq)
        return act_fail(err, err_len, -EINVAL, "env file: line \"%s\" is not NAME=value", quote);
    name_len = (size_t)(eq - line);
    v = eq + 1;
    vlen = n - name_len - 1;
    if (name_len == strlen(EXEC_ENV_STATE) && memcmp(line, EXEC_ENV_STATE, name_len) == 0)
        which = 0;
    else if (name_len == strlen(EXEC_ENV_CLUSTER) && memcmp(line, EXEC_ENV_CLUSTER, name_len) == 0)
        which = 1;
    else
        return act_fail(err, err_len, -EINVAL,
                        "env file: line \"%s\": only " EXEC_ENV_STATE " and " EXEC_ENV_CLUSTER
                        " are allowed",
                        quote);
    if (seen[which])
        return act_fail(err, err_len, -EINVAL, "env file: %s given twice",
                        which ? EXEC_ENV_CLUSTER : EXEC_ENV_STATE);
    seen[which] = true;
    if (which == 0) {
        if (!valid_state(v, vlen))
            return act_fail(err, err_len, -EINVAL,
                            "env file: " EXEC_ENV_STATE "=%.*s: want new or existing",
                            (int)(vlen < CONFIG_ERR_QUOTE ? vlen : CONFIG_ERR_QUOTE), v);
        memcpy(out->state, v, vlen);
        return 0;
    }
    if (vlen == 0)
        return act_fail(err, err_len, -EINVAL, "env file: " EXEC_ENV_CLUSTER " is empty");
    for (size_t i = 0; i < vlen; i++) /* bounded: the line is not NUL-terminated */
        if (v[i] != '\0' && strchr("\"'`$\\", v[i]))
            return act_fail(err, err_len, -EINVAL,
                            "env file: " EXEC_ENV_CLUSTER
                            ": quote, backquote, $ or backslash (the file is "
                            "never sourced: no quoting, no expansion)");
    if (vlen >= sizeof(out->initial_cluster))
        return act_fail(err, err_len, -EINVAL, "env file: " EXEC_ENV_CLUSTER " is too long");
    memcpy(out->initial_cluster, v, vlen);
    out->initial_cluster[vlen] = '\0';
    {
        struct config_list names = {0}, urls = {0};
        char why[256];
        int rc =
            config_parse_initial_cluster_err(out->initial_cluster, &names, &urls, why, sizeof(why));
        config_list_free(&names);
        config_list_free(&urls);
        if (rc != 0)
            return act_fail(err, err_len, -EINVAL, "env file: " EXEC_ENV_CLUSTER ": %s", why);
    }
    return 0;
}

int exec_parse_env(const char *buf, size_t len, struct exec_env *out, char *err, size_t err_len)
{
    bool seen[2] = {false, false};
    size_t pos = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len > EXEC_MAX_FILE)
        return act_fail(err, err_len, -EINVAL, "env file: larger than the writer's bound");
    if (len > 0 && buf[len - 1] != '\n')
        return act_fail(err, err_len, -EINVAL,
                        "env file: the last line has no newline (truncated?)");
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = (size_t)(nl - (buf + pos)); /* nl != NULL: the buffer ends with '\n' */

        if (n == 0)
            return act_fail(err, err_len, -EINVAL, "env file: empty line");
        rc = parse_line(buf + pos, n, out, seen, err, err_len);
        if (rc != 0)
            return rc;
        pos += n + 1;
    }
    if (!seen[0])
        return act_fail(err, err_len, -EINVAL, "env file: no " EXEC_ENV_STATE " line");
    return 0;
}

int exec_read(const char *path, bool env_format, struct exec_env *out, char *err, size_t err_len)
{
    static char buf[EXEC_MAX_FILE + 1];
    size_t len;
    int rc;
    char why[512];

    memset(out, 0, sizeof(*out));
    rc = act_read_small(path, buf, sizeof(buf), &len);
    if (rc == -EINVAL)
        return act_fail(err, err_len, rc, "%s: not a regular file", path);
    if (rc == -EFBIG)
        return act_fail(err, err_len, -EINVAL, "%s: larger than %u bytes", path,
                        (unsigned)EXEC_MAX_FILE);
    if (rc != 0)
        return act_fail(err, err_len, rc, "%s: %s", path, strerror(-rc));
    rc = env_format ? exec_parse_env(buf, len, out, why, sizeof(why))
                    : exec_parse_state(buf, len, out, why, sizeof(why));
    if (rc != 0)
        (void)snprintf(err, err_len, "%s: %s", path, why);
    return rc;
}

int exec_main(int argc, char **argv)
{
    struct config_string env_file = {0}, state_file = {0};
    const struct config_option table[] = {
        {"env-file",
         {NULL},
         CONFIG_STRING,
         &env_file,
         0,
         0,
         "the env file reset-member --env-file wrote (" EXEC_ENV_STATE ", " EXEC_ENV_CLUSTER ")",
         "FILE"},
        {"state-file",
         {NULL},
         CONFIG_STRING,
         &state_file,
         0,
         0,
         "without --env-file: the one-word state file reset-member --state-file wrote",
         "FILE"},
    };
    const size_t n_table = ARRAY_SIZE(table);
    struct exec_env e;
    char err[1024];
    int dash = -1, rc;
    const char *src;
    cJSON *f;

    log_set_program("reset-member");
    snprintf(state_file.value, sizeof(state_file.value), "%s", EXEC_DEFAULT_STATE_FILE);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            dash = i;
            break;
        }
    }
    /* flags before "--" only: the program's own flags are never ours */
    rc = config_parse(table, n_table, dash < 0 ? argc : dash, argv, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        config_usage(stdout, "reset-member exec", exec_summary, table, n_table);
        return EXEC_EXIT_OK;
    }
    if (rc == CONFIG_VERSION) {
        printf("reset-member %s\n", ETCD_RECOVERY_VERSION);
        return EXEC_EXIT_OK;
    }
    if (rc == CONFIG_OK && env_file.set && state_file.set) {
        snprintf(err, sizeof(err), "give --env-file or --state-file, not both");
        rc = CONFIG_ERROR;
    }
    if (rc == CONFIG_OK && (env_file.set ? env_file.value : state_file.value)[0] == '\0') {
        snprintf(err, sizeof(err), "%s is empty", env_file.set ? "--env-file" : "--state-file");
        rc = CONFIG_ERROR;
    }
    if (rc == CONFIG_OK && (dash < 0 || dash + 1 >= argc)) {
        snprintf(err, sizeof(err), "missing \"-- /path/to/program [args...]\"");
        rc = CONFIG_ERROR;
    }
    if (rc == CONFIG_OK && argv[dash + 1][0] != '/') {
        snprintf(err, sizeof(err), "%.200s: the program must be an absolute path (no PATH search)",
                 argv[dash + 1]);
        rc = CONFIG_ERROR;
    }
    if (rc != CONFIG_OK) {
        fprintf(stderr, "reset-member exec: %s\n", err);
        config_usage(stderr, "reset-member exec", exec_summary, table, n_table);
        return EXEC_EXIT_USAGE;
    }

    src = env_file.set ? env_file.value : state_file.value;
    rc = exec_read(src, env_file.set, &e, err, sizeof(err));
    if (rc != 0) {
        f = cJSON_CreateObject();
        if (f) {
            cJSON_AddStringToObject(f, "file", src);
            cJSON_AddStringToObject(f, "error", err);
            cJSON_AddStringToObject(f, "program", argv[dash + 1]);
        }
        log_event(LOG_ERROR, "exec: no valid state from reset-member; not starting the program", f);
        return EXEC_EXIT_FAILED;
    }
    if (setenv(EXEC_ENV_STATE, e.state, 1) != 0 ||
        (e.initial_cluster[0] && setenv(EXEC_ENV_CLUSTER, e.initial_cluster, 1) != 0)) {
        log_msg(LOG_ERROR, "exec: setenv: %s", strerror(errno));
        return EXEC_EXIT_FAILED;
    }
    f = cJSON_CreateObject();
    if (f) {
        cJSON_AddStringToObject(f, "file", src);
        cJSON_AddStringToObject(f, "program", argv[dash + 1]);
        cJSON_AddStringToObject(f, "state", e.state);
        if (e.initial_cluster[0])
            cJSON_AddStringToObject(f, "initial_cluster", e.initial_cluster);
    }
    log_event(LOG_INFO, "exec", f);
    execv(argv[dash + 1], argv + dash + 1);
    rc = errno;
    f = cJSON_CreateObject();
    if (f) {
        cJSON_AddStringToObject(f, "program", argv[dash + 1]);
        cJSON_AddStringToObject(f, "error", strerror(rc));
    }
    log_event(LOG_ERROR, "exec: execv failed", f);
    return EXEC_EXIT_FAILED;
}
