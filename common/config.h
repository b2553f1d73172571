/* config.h - command-line flags with environment fallbacks, shared by both programs.
 *
 * A program declares a table of options; config_parse() fills the targets from, in order of
 * precedence: the command line (--name value or --name=value), the first set env variable of
 * the option's `env` list, the default already stored in the target. Values are checked strictly
 * (numbers range-checked, durations with units, lists bounded); anything wrong gives a one-line
 * reason and the caller prints usage and exits 2. Help text rendering lives here too. */
#ifndef ER_CONFIG_H
#define ER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bounds.h"

enum config_type {
    CONFIG_STRING,   /* target: char * [CONFIG_MAX_VALUE] buffer, see config_string */
    CONFIG_BOOL,     /* target: bool *; "--x" sets true, "--no-x" (neg form) false;
                      * env values: 1/0/true/false/yes/no */
    CONFIG_UINT,     /* target: uint64_t *, range [min, max]; max 0 means no upper bound */
    CONFIG_DURATION, /* target: uint64_t * in milliseconds; "250ms", "5s", "2m", "1h";
                      * a bare number means seconds (etcdctl's habit); range [min, max] ms
                      * (max 0: no upper bound) */
    CONFIG_LIST,     /* target: struct config_list *; comma-separated, at most CONFIG_MAX_LIST;
                      * a default stored in the target must be malloc'd (it is freed when
                      * replaced) */
};

struct config_string {
    char value[CONFIG_MAX_VALUE];
    bool set; /* given on the command line or by env */
};

struct config_list {
    char *items[CONFIG_MAX_LIST]; /* malloc'd; free with config_list_free */
    size_t n;
    bool set;
};

struct config_option {
    const char *name;   /* long name without dashes, e.g. "endpoints" */
    const char *env[3]; /* env fallbacks in order, NULL-terminated (may all be NULL) */
    enum config_type type;
    void *target;         /* struct config_string *, bool *, uint64_t *, struct config_list * */
    uint64_t min, max;    /* for CONFIG_UINT and CONFIG_DURATION (ms) */
    const char *help;     /* one line; "(default ...)" is appended by config_usage */
    const char *arg_name; /* placeholder in usage, e.g. "URLS"; NULL for bools */
};

enum {
    CONFIG_OK = 0,
    CONFIG_HELP = 1,    /* --help / -h given: print usage to stdout, exit 0 */
    CONFIG_VERSION = 2, /* --version given: print version, exit 0 */
    CONFIG_ERROR = -1,  /* err filled: print it and usage to stderr, exit 2 */
};

/* Parse argv (argv[0] skipped) and the environment into the option targets. Unknown flags,
 * positional arguments, missing values, repeated flags (--x and --no-x count as the same) and
 * malformed values are errors; `err` names the flag or env variable. --help/-h and --version
 * are answered as soon as they are met, before the environment is read. An env variable set
 * to "" counts as unset. A value for a non-bool flag is "--x=v" or the next argument unless
 * that starts with "--". At most CONFIG_MAX_OPTIONS options.
 * Returns CONFIG_OK, CONFIG_HELP, CONFIG_VERSION or CONFIG_ERROR with `err` filled. */
int config_parse(const struct config_option *opts, size_t n_opts, int argc, char *const *argv,
                 char *err, size_t err_len);

/* Print "usage: prog [flags]" and one line per option, with env names and defaults. */
void config_usage(FILE *out, const char *prog, const char *summary,
                  const struct config_option *opts, size_t n_opts);

/* Strict helpers, also used by other modules. Return 0 or -EINVAL / -ERANGE. */
int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int config_parse_duration_ms(const char *s, uint64_t *out_ms);
int config_parse_bool(const char *s, bool *out);
/* Split "a,b,c" (no empty items, surrounding spaces trimmed) into list->items. `list` must
 * be zeroed or hold an earlier result (freed and replaced on success, untouched on error).
 * -EINVAL: empty item; -ERANGE: more than CONFIG_MAX_LIST items or an item of
 * CONFIG_MAX_VALUE bytes or more; -ENOMEM. */
int config_parse_list(const char *s, struct config_list *list);
void config_list_free(struct config_list *list);

/* Parse "name1=url1,name2=url2" (etcd's --initial-cluster) into parallel name/url lists.
 * Names and urls are non-empty, names unique (so one URL per member). Same list rules and
 * errors as config_parse_list; lists replaced only on success. Writes a one-line reason to
 * err if non-NULL (without a prefix: the caller adds the flag or env name). */
int config_parse_initial_cluster_err(const char *s, struct config_list *names,
                                     struct config_list *urls, char *err, size_t err_len);

#endif
