/* fuzz_exec_env.c - libFuzzer target for exec_parse_env and exec_parse_state (the env and state
 * files `reset-member exec` reads before starting etcd); invariants: an accepted file yields
 * state new|existing, an initial cluster without control, space or quoting bytes, and renders
 * (as act.c writes it) and parses back to the same struct. */
#include "exec.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct exec_env e, back;
    static char buf[EXEC_MAX_FILE + 1], err[512];
    int rc = exec_parse_env((const char *)data, size, &e, err, sizeof(err));

    if (rc != 0 && rc != -EINVAL)
        __builtin_trap();
    if (rc == 0) {
        if (strcmp(e.state, "new") != 0 && strcmp(e.state, "existing") != 0)
            __builtin_trap();
        for (const char *p = e.initial_cluster; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\"'`$\\", *p))
                __builtin_trap();
        int n = snprintf(buf, sizeof(buf), "ETCD_INITIAL_CLUSTER_STATE=%s\n%s%s%s", e.state,
                         e.initial_cluster[0] ? "ETCD_INITIAL_CLUSTER=" : "", e.initial_cluster,
                         e.initial_cluster[0] ? "\n" : "");
        if (n < 0 || (size_t)n >= sizeof(buf) ||
            exec_parse_env(buf, (size_t)n, &back, err, sizeof(err)) != 0 ||
            memcmp(&e, &back, sizeof(e)) != 0)
            __builtin_trap();
    }
    rc = exec_parse_state((const char *)data, size, &e, err, sizeof(err));
    if (rc != 0 && rc != -EINVAL)
        __builtin_trap();
    if (rc == 0 && strcmp(e.state, "new") != 0 && strcmp(e.state, "existing") != 0)
        __builtin_trap();
    return 0;
}
