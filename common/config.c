/* config.c - strict, table-driven parsing of flags and environment fallbacks, the value
 * helpers (numbers, durations, booleans, lists, --initial-cluster) and usage text. What the
 * options mean, and printing errors and exiting, are left to each program's main.c. */
#include "config.h"
#include "array.h"
#include "errbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_USAGE_COLUMN 34 /* help text starts here unless the flag is longer */

/* A bad value quoted in a reason: bounded, one line, no control characters. */
static const char *quote(const char *s, char *buf, size_t cap)
{
    size_t i = 0, o = 0;

    buf[o++] = '"';
    for (; i < CONFIG_ERR_QUOTE && s[i] != '\0' && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            buf[o++] = '\\';
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i] != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

#define QUOTE_BUF (2 * CONFIG_ERR_QUOTE + 8)

/* ---- value helpers ---------------------------------------------------------------------- */

/* Digits only; returns the number of digits consumed (0: none) or -ERANGE on overflow. */
static int scan_digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;

    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        unsigned d = (unsigned)(s[n] - '0');

        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return n;
}

int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    int n;

    if (s == NULL || out == NULL)
        return -EINVAL;
    n = scan_digits(s, &v);
    if (n == -ERANGE) {
        /* Overflow, but only if the rest is digits too: "9999...x" is malformed. */
        while (*s >= '0' && *s <= '9')
            s++;
        return *s == '\0' ? -ERANGE : -EINVAL;
    }
    if (n == 0 || s[n] != '\0')
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int config_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t v;
    int n;

    if (s == NULL || out_ms == NULL)
        return -EINVAL;
    n = scan_digits(s, &v);
    if (n == 0)
        return -EINVAL;
    if (n < 0) {
        while (*s >= '0' && *s <= '9')
            s++;
        n = 0;
        v = UINT64_MAX; /* overflowed: the unit still decides whether it is well-formed */
    }
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strcmp(s + n, units[i].unit) != 0)
            continue;
        if (v == UINT64_MAX || v > UINT64_MAX / units[i].ms)
            return -ERANGE;
        *out_ms = v * units[i].ms;
        return 0;
    }
    return -EINVAL;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes"};
    static const char *const no[] = {"0", "false", "no"};

    if (s == NULL || out == NULL)
        return -EINVAL;
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

void config_list_free(struct config_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n && i < CONFIG_MAX_LIST; i++) {
        free(list->items[i]);
        list->items[i] = NULL;
    }
    list->n = 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits s into out (which must be empty); on error out is left empty and err says why. */
static int split_list(const char *s, struct config_list *out, char *err, size_t err_len)
{
    char q[QUOTE_BUF];
    int rc = 0;

    if (s == NULL) {
        errbuf_set(err, err_len, "missing value");
        return -EINVAL;
    }
    for (const char *p = s;;) {
        const char *end = strchr(p, ',');
        const char *a = p, *b = end != NULL ? end : p + strlen(p);
        size_t len;
        char *item;

        while (a < b && is_space(*a))
            a++;
        while (b > a && is_space(b[-1]))
            b--;
        len = (size_t)(b - a);
        if (len == 0) {
            errbuf_set(err, err_len, "empty item in list %s", quote(s, q, sizeof q));
            rc = -EINVAL;
            goto out;
        }
        if (len >= CONFIG_MAX_VALUE) {
            errbuf_set(err, err_len, "list item too long (max %u bytes)", CONFIG_MAX_VALUE - 1);
            rc = -ERANGE;
            goto out;
        }
        if (out->n >= CONFIG_MAX_LIST) {
            errbuf_set(err, err_len, "too many items in list (max %u)", CONFIG_MAX_LIST);
            rc = -ERANGE;
            goto out;
        }
        item = malloc(len + 1);
        if (item == NULL) {
            errbuf_set(err, err_len, "out of memory");
            rc = -ENOMEM;
            goto out;
        }
        memcpy(item, a, len);
        item[len] = '\0';
        out->items[out->n++] = item;
        if (end == NULL)
            break;
        p = end + 1;
    }
out:
    if (rc != 0)
        config_list_free(out);
    return rc;
}

/* Moves a freshly parsed list into a target, freeing what the target held. */
static void list_replace(struct config_list *dst, struct config_list *src)
{
    bool set = dst->set;

    config_list_free(dst);
    *dst = *src;
    dst->set = set;
    memset(src, 0, sizeof *src);
}

int config_parse_list(const char *s, struct config_list *list)
{
    struct config_list tmp = {0};
    int rc;

    if (list == NULL)
        return -EINVAL;
    rc = split_list(s, &tmp, NULL, 0);
    if (rc == 0)
        list_replace(list, &tmp);
    return rc;
}

int config_parse_initial_cluster_err(const char *s, struct config_list *names,
                                     struct config_list *urls, char *err, size_t err_len)
{
    struct config_list entries = {0}, n = {0}, u = {0};
    char q[QUOTE_BUF];
    int rc;

    if (names == NULL || urls == NULL) {
        errbuf_set(err, err_len, "missing output");
        return -EINVAL;
    }
    rc = split_list(s, &entries, err, err_len);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < entries.n; i++) {
        char *e = entries.items[i], *eq = strchr(e, '=');
        char *name = e, *url, *ne;

        if (eq == NULL) {
            errbuf_set(err, err_len, "entry %s is not name=url", quote(e, q, sizeof q));
            rc = -EINVAL;
            goto out;
        }
        *eq = '\0';
        url = eq + 1;
        ne = eq;
        while (ne > name && is_space(ne[-1]))
            *--ne = '\0';
        while (is_space(*url))
            url++;
        if (*name == '\0' || *url == '\0') {
            const char *what = *name == '\0' ? "name" : "url";

            *eq = '=';
            errbuf_set(err, err_len, "entry %s has an empty %s", quote(e, q, sizeof q), what);
            rc = -EINVAL;
            goto out;
        }
        for (size_t j = 0; j < n.n; j++) {
            if (strcmp(n.items[j], name) == 0) {
                errbuf_set(err, err_len, "duplicate member name %s", quote(name, q, sizeof q));
                rc = -EINVAL;
                goto out;
            }
        }
        n.items[n.n] = strdup(name);
        u.items[u.n] = strdup(url);
        if (n.items[n.n] == NULL || u.items[u.n] == NULL) {
            free(n.items[n.n]);
            free(u.items[u.n]);
            errbuf_set(err, err_len, "out of memory");
            rc = -ENOMEM;
            goto out;
        }
        n.n++;
        u.n++;
    }
    list_replace(names, &n);
    list_replace(urls, &u);
out:
    config_list_free(&entries);
    config_list_free(&n);
    config_list_free(&u);
    return rc;
}

/* ---- the option table ------------------------------------------------------------------- */

static uint64_t opt_max(const struct config_option *o)
{
    return o->max == 0 ? UINT64_MAX : o->max;
}

static void format_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* Store `val` into o's target; `who` names the source ("--name" or the env variable). */
static int set_value(const struct config_option *o, const char *who, const char *val, char *err,
                     size_t err_len)
{
    char q[QUOTE_BUF], lo[32], hi[32], why[160];
    size_t len = strlen(val);
    int rc = 0;

    switch (o->type) {
    case CONFIG_STRING: {
        struct config_string *t = o->target;

        if (len == 0) {
            errbuf_set(err, err_len, "%s: empty value", who);
            return -EINVAL;
        }
        if (len >= sizeof t->value) {
            errbuf_set(err, err_len, "%s: value too long (max %zu bytes)", who,
                       sizeof t->value - 1);
            return -ERANGE;
        }
        memcpy(t->value, val, len + 1);
        t->set = true;
        return 0;
    }
    case CONFIG_BOOL:
        rc = config_parse_bool(val, o->target);
        if (rc != 0)
            errbuf_set(err, err_len, "%s: invalid boolean %s (use true or false)", who,
                       quote(val, q, sizeof q));
        return rc;
    case CONFIG_UINT: {
        uint64_t v;

        rc = config_parse_u64(val, o->min, opt_max(o), &v);
        if (rc == -ERANGE)
            errbuf_set(err, err_len, "%s: %s out of range (%llu..%llu)", who,
                       quote(val, q, sizeof q), (unsigned long long)o->min,
                       (unsigned long long)opt_max(o));
        else if (rc != 0)
            errbuf_set(err, err_len, "%s: invalid number %s (digits only)", who,
                       quote(val, q, sizeof q));
        else
            *(uint64_t *)o->target = v;
        return rc;
    }
    case CONFIG_DURATION: {
        uint64_t v;

        rc = config_parse_duration_ms(val, &v);
        if (rc == 0 && (v < o->min || v > opt_max(o)))
            rc = -ERANGE;
        if (rc == -ERANGE) {
            format_duration(o->min, lo, sizeof lo);
            if (opt_max(o) == UINT64_MAX)
                snprintf(hi, sizeof hi, "max");
            else
                format_duration(opt_max(o), hi, sizeof hi);
            errbuf_set(err, err_len, "%s: duration %s out of range (%s..%s)", who,
                       quote(val, q, sizeof q), lo, hi);
        } else if (rc != 0) {
            errbuf_set(err, err_len, "%s: invalid duration %s (use 250ms, 5s, 2m)", who,
                       quote(val, q, sizeof q));
        } else {
            *(uint64_t *)o->target = v;
        }
        return rc;
    }
    case CONFIG_LIST: {
        struct config_list tmp = {0}, *t = o->target;

        rc = split_list(val, &tmp, why, sizeof why);
        if (rc != 0) {
            errbuf_set(err, err_len, "%s: %s", who, why);
            return rc;
        }
        list_replace(t, &tmp);
        t->set = true;
        return 0;
    }
    }
    errbuf_set(err, err_len, "%s: unknown option type", who);
    return -EINVAL;
}

static const struct config_option *find_opt(const struct config_option *opts, size_t n_opts,
                                            const char *name, size_t name_len)
{
    for (size_t i = 0; i < n_opts; i++) {
        if (opts[i].name != NULL && strlen(opts[i].name) == name_len &&
            memcmp(opts[i].name, name, name_len) == 0)
            return &opts[i];
    }
    return NULL;
}

/* One command-line argument (and maybe the next as its value). *i is advanced past what was
 * consumed. Returns CONFIG_OK, CONFIG_HELP, CONFIG_VERSION or CONFIG_ERROR. */
static int parse_arg(const struct config_option *opts, size_t n_opts, bool *seen, int argc,
                     char *const *argv, int *i, char *err, size_t err_len)
{
    const char *arg = argv[*i], *name, *eq, *val;
    const struct config_option *o;
    char q[QUOTE_BUF], who[80];
    size_t name_len;
    bool neg = false;

    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
        return CONFIG_HELP;
    if (strcmp(arg, "--version") == 0)
        return CONFIG_VERSION;
    if (arg[0] != '-' || strcmp(arg, "-") == 0 || strcmp(arg, "--") == 0) {
        errbuf_set(err, err_len, "unexpected argument %s (flags only)", quote(arg, q, sizeof q));
        return CONFIG_ERROR;
    }
    if (arg[1] != '-') {
        errbuf_set(err, err_len, "unknown flag %s (long flags take two dashes)",
                   quote(arg, q, sizeof q));
        return CONFIG_ERROR;
    }
    name = arg + 2;
    eq = strchr(name, '=');
    name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    o = find_opt(opts, n_opts, name, name_len);
    if (o == NULL && name_len > 3 && memcmp(name, "no-", 3) == 0) {
        o = find_opt(opts, n_opts, name + 3, name_len - 3);
        if (o != NULL && o->type != CONFIG_BOOL)
            o = NULL;
        neg = o != NULL;
    }
    if (o == NULL) {
        errbuf_set(err, err_len, "unknown flag %s", quote(arg, q, sizeof q));
        return CONFIG_ERROR;
    }
    snprintf(who, sizeof who, "--%s%s", neg ? "no-" : "", o->name);
    if (seen[o - opts]) {
        errbuf_set(err, err_len, "--%s: given more than once", o->name);
        return CONFIG_ERROR;
    }
    seen[o - opts] = true;
    if (o->type == CONFIG_BOOL) {
        if (neg && eq != NULL) {
            errbuf_set(err, err_len, "%s: takes no value", who);
            return CONFIG_ERROR;
        }
        if (eq == NULL) {
            *(bool *)o->target = !neg;
            return CONFIG_OK;
        }
        return set_value(o, who, eq + 1, err, err_len) == 0 ? CONFIG_OK : CONFIG_ERROR;
    }
    if (eq != NULL) {
        val = eq + 1;
    } else {
        /* A following flag is not a value: "--endpoints --cacert x" forgot the value. */
        if (*i + 1 >= argc || argv[*i + 1] == NULL || strncmp(argv[*i + 1], "--", 2) == 0) {
            errbuf_set(err, err_len, "%s: missing value", who);
            return CONFIG_ERROR;
        }
        val = argv[++*i];
    }
    return set_value(o, who, val, err, err_len) == 0 ? CONFIG_OK : CONFIG_ERROR;
}

int config_parse(const struct config_option *opts, size_t n_opts, int argc, char *const *argv,
                 char *err, size_t err_len)
{
    bool seen[CONFIG_MAX_OPTIONS] = {false};

    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (n_opts > CONFIG_MAX_OPTIONS || (n_opts > 0 && opts == NULL)) {
        errbuf_set(err, err_len, "config: option table too large (max %u)", CONFIG_MAX_OPTIONS);
        return CONFIG_ERROR;
    }
    for (int i = 1; i < argc && argv != NULL && argv[i] != NULL; i++) {
        int rc = parse_arg(opts, n_opts, seen, argc, argv, &i, err, err_len);

        if (rc != CONFIG_OK)
            return rc;
    }
    /* Environment fallbacks for what the command line left alone; an empty variable counts
     * as unset (Kubernetes manifests often carry `value: ""`). */
    for (size_t k = 0; k < n_opts; k++) {
        if (seen[k])
            continue;
        for (size_t e = 0; e < ARRAY_SIZE(opts[k].env); e++) {
            const char *name = opts[k].env[e], *v;

            if (name == NULL)
                break;
            v = getenv(name);
            if (v == NULL || v[0] == '\0')
                continue;
            if (set_value(&opts[k], name, v, err, err_len) != 0)
                return CONFIG_ERROR;
            break;
        }
    }
    return CONFIG_OK;
}

/* ---- usage ------------------------------------------------------------------------------ */

static void print_current(FILE *out, const struct config_option *o)
{
    char buf[32];

    switch (o->type) {
    case CONFIG_STRING: {
        const struct config_string *t = o->target;

        if (t->value[0] != '\0')
            fprintf(out, " (default \"%s\")", t->value);
        else
            fprintf(out, " (default none)");
        return;
    }
    case CONFIG_BOOL:
        fprintf(out, " (default %s)", *(const bool *)o->target ? "true" : "false");
        return;
    case CONFIG_UINT:
        fprintf(out, " (default %llu)", (unsigned long long)*(const uint64_t *)o->target);
        return;
    case CONFIG_DURATION:
        format_duration(*(const uint64_t *)o->target, buf, sizeof buf);
        fprintf(out, " (default %s)", buf);
        return;
    case CONFIG_LIST: {
        const struct config_list *t = o->target;

        if (t->n == 0) {
            fprintf(out, " (default none)");
            return;
        }
        fprintf(out, " (default \"");
        for (size_t i = 0; i < t->n && i < CONFIG_MAX_LIST; i++)
            fprintf(out, "%s%s", i > 0 ? "," : "", t->items[i]);
        fprintf(out, "\")");
        return;
    }
    }
}

static void print_line(FILE *out, const char *left, const char *help)
{
    int pad = CONFIG_USAGE_COLUMN - 2 - (int)strlen(left);

    fprintf(out, "  %s%*s%s", left, pad > 2 ? pad : 2, "", help);
}

void config_usage(FILE *out, const char *prog, const char *summary,
                  const struct config_option *opts, size_t n_opts)
{
    char left[128];

    if (out == NULL)
        return;
    fprintf(out, "usage: %s [flags]\n", prog != NULL ? prog : "program");
    if (summary != NULL && summary[0] != '\0')
        fprintf(out, "%s\n", summary);
    fprintf(out, "\nflags (flag > environment > default):\n");
    for (size_t i = 0; opts != NULL && i < n_opts; i++) {
        const struct config_option *o = &opts[i];

        if (o->name == NULL)
            continue;
        if (o->type == CONFIG_BOOL)
            snprintf(left, sizeof left, "--[no-]%s", o->name);
        else
            snprintf(left, sizeof left, "--%s %s", o->name,
                     o->arg_name != NULL ? o->arg_name : "VALUE");
        print_line(out, left, o->help != NULL ? o->help : "");
        for (size_t e = 0; e < ARRAY_SIZE(o->env) && o->env[e] != NULL; e++)
            fprintf(out, "%s%s", e == 0 ? " (env " : ", ", o->env[e]);
        if (o->env[0] != NULL)
            fprintf(out, ")");
        if (o->target != NULL)
            print_current(out, o);
        fprintf(out, "\n");
    }
    print_line(out, "-h, --help", "show this help and exit\n");
    print_line(out, "--version", "print the version and exit\n");
}
