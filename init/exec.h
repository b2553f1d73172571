/* exec.h - `reset-member exec`: the etcd container's start command on images without a shell.
 *
 * Reads the env file (or the one-word state file) that reset-member's init run wrote, strictly
 * (never sourced), sets ETCD_INITIAL_CLUSTER_STATE (and ETCD_INITIAL_CLUSTER) over the pod's
 * env and execv()s the target. Deciding the state is main.c's/act.c's; this only carries it. */
#ifndef ER_EXEC_H
#define ER_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "act.h"

/* The writer's bounds (act.c, restore.c): a file it wrote always fits, anything larger is not
 * one of its files. */
#define EXEC_MAX_FILE ACT_MAX_FILE                       /* env or state file, bytes */
#define EXEC_MAX_INITIAL_CLUSTER ACT_MAX_INITIAL_CLUSTER /* value incl. the NUL */
#define EXEC_MAX_STATE 16                                /* "new" / "existing" incl. the NUL */

#define EXEC_ENV_STATE "ETCD_INITIAL_CLUSTER_STATE"
#define EXEC_ENV_CLUSTER "ETCD_INITIAL_CLUSTER"

struct exec_env {
    char state[EXEC_MAX_STATE];                     /* "new" or "existing" */
    char initial_cluster[EXEC_MAX_INITIAL_CLUSTER]; /* "" when the file has no such line */
};

/* Parse an env file: "NAME=value\n" lines, exactly one ETCD_INITIAL_CLUSTER_STATE (new or
 * existing) and at most one ETCD_INITIAL_CLUSTER (a valid name=peerURL list), in any order.
 * Anything else is an error: other names, blank or comment lines, a missing final newline,
 * NUL/control/space bytes, a repeated name, a value too long. No quoting, no expansion.
 * Returns 0, or -EINVAL with a one-line reason in err (out is then unspecified). */
int exec_parse_env(const char *buf, size_t len, struct exec_env *out, char *err, size_t err_len);

/* Parse a state file: "new" or "existing", optionally followed by one "\n" (HyperShift's
 * format). Sets out->state, clears out->initial_cluster. 0 or -EINVAL with err filled. */
int exec_parse_state(const char *buf, size_t len, struct exec_env *out, char *err, size_t err_len);

/* Read path (a regular file of at most EXEC_MAX_FILE bytes) and parse it as an env file
 * (env_format) or a state file. 0, -EINVAL (malformed, too large, not a regular file) or the
 * open/read errno, with err filled (the path is in it). */
int exec_read(const char *path, bool env_format, struct exec_env *out, char *err, size_t err_len);

/* The subcommand: argv[0] is "exec". `exec [--env-file F | --state-file F] -- /abs/prog
 * [args...]`. Does not return on success (execv); otherwise returns the exit code: 2 usage,
 * 1 the file is missing or malformed or the exec failed (etcd was not started). 0 for
 * --help/--version. */
int exec_main(int argc, char **argv);

#endif
