/* test_metrics.c - metrics_render output checked by a strict Prometheus text-format parser.
 *
 * The parser below is written from the 0.0.4 exposition format spec: HELP/TYPE before samples,
 * valid metric and label names, escaped label values, one contiguous group per family, no
 * duplicate series, histograms with cumulative buckets ending in +Inf plus _sum and _count.
 * It is tested against bad inputs too, so that it can fail. promtool runs in the e2e test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "cache.h"
#include "clock.h"
#include "health.h"
#include "metrics.h"

#define P_MAX_FAMILIES 64
#define P_MAX_SAMPLES 512
#define P_MAX_LABELS 8
#define P_MAX_STR 256

struct p_label {
    char name[P_MAX_STR];
    char value[P_MAX_STR];
};

struct p_sample {
    char name[P_MAX_STR];
    struct p_label labels[P_MAX_LABELS];
    size_t n_labels;
    double value;
    int family;
};

struct p_family {
    char name[P_MAX_STR];
    char type[16];
    bool help, has_type;
};

struct parsed {
    struct p_family fam[P_MAX_FAMILIES];
    size_t n_fam;
    struct p_sample s[P_MAX_SAMPLES];
    size_t n_s;
    char err[256];
};

static bool valid_metric_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_') || strncmp(s, "__", 2) == 0)
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static int p_fail(struct parsed *p, int line, const char *why)
{
    (void)snprintf(p->err, sizeof(p->err), "line %d: %s", line, why);
    return -1;
}

/* Family a sample belongs to: its own name, or for histograms the name without the suffix. */
static int family_of(struct parsed *p, const char *name)
{
    for (size_t i = 0; i < p->n_fam; i++) {
        if (strcmp(p->fam[i].name, name) == 0)
            return (int)i;
        size_t n = strlen(p->fam[i].name);
        if (strcmp(p->fam[i].type, "histogram") == 0 && strncmp(name, p->fam[i].name, n) == 0 &&
            (!strcmp(name + n, "_bucket") || !strcmp(name + n, "_sum") ||
             !strcmp(name + n, "_count")))
            return (int)i;
    }
    return -1;
}

static int get_family(struct parsed *p, const char *name)
{
    for (size_t i = 0; i < p->n_fam; i++)
        if (strcmp(p->fam[i].name, name) == 0)
            return (int)i;
    if (p->n_fam == P_MAX_FAMILIES)
        return -1;
    (void)snprintf(p->fam[p->n_fam].name, P_MAX_STR, "%s", name);
    return (int)p->n_fam++;
}

static bool parse_value(const char *s, double *out)
{
    if (!strcmp(s, "+Inf")) {
        *out = INFINITY;
        return true;
    }
    if (!strcmp(s, "-Inf")) {
        *out = -INFINITY;
        return true;
    }
    if (!strcmp(s, "NaN")) {
        *out = NAN;
        return true;
    }
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end;
    *out = strtod(s, &end);
    return *end == '\0';
}

/* Parse one sample line into p->s[p->n_s]. */
static int parse_sample(struct parsed *p, int ln, char *line)
{
    if (p->n_s == P_MAX_SAMPLES)
        return p_fail(p, ln, "too many samples");
    struct p_sample *s = &p->s[p->n_s];
    memset(s, 0, sizeof(*s));
    size_t n = strcspn(line, "{ ");
    if (n == 0 || n >= P_MAX_STR)
        return p_fail(p, ln, "bad metric name");
    memcpy(s->name, line, n);
    if (!valid_metric_name(s->name))
        return p_fail(p, ln, "invalid metric name");
    char *c = line + n;
    if (*c == '{') {
        c++;
        while (*c != '}') {
            if (s->n_labels == P_MAX_LABELS)
                return p_fail(p, ln, "too many labels");
            struct p_label *l = &s->labels[s->n_labels++];
            size_t k = strcspn(c, "=");
            if (!c[k] || k == 0 || k >= P_MAX_STR)
                return p_fail(p, ln, "bad label");
            memcpy(l->name, c, k);
            if (!valid_label_name(l->name))
                return p_fail(p, ln, "invalid label name");
            for (size_t i = 0; i + 1 < s->n_labels; i++)
                if (!strcmp(s->labels[i].name, l->name))
                    return p_fail(p, ln, "duplicate label");
            c += k + 1;
            if (*c++ != '"')
                return p_fail(p, ln, "label value not quoted");
            size_t v = 0;
            for (;; c++) {
                if (!*c || *c == '\n')
                    return p_fail(p, ln, "unterminated label value");
                if (*c == '"')
                    break;
                char ch = *c;
                if (ch == '\\') {
                    c++;
                    if (*c == 'n')
                        ch = '\n';
                    else if (*c == '\\' || *c == '"')
                        ch = *c;
                    else
                        return p_fail(p, ln, "bad escape in label value");
                }
                if (v + 1 >= P_MAX_STR)
                    return p_fail(p, ln, "label value too long");
                l->value[v++] = ch;
            }
            c++;
            if (*c == ',')
                c++;
            else if (*c != '}')
                return p_fail(p, ln, "expected , or }");
        }
        c++;
    }
    if (*c++ != ' ')
        return p_fail(p, ln, "expected one space before the value");
    char *ts = strchr(c, ' ');
    if (ts) {
        *ts++ = '\0';
        char *end;
        (void)strtoll(ts, &end, 10);
        if (!*ts || *end)
            return p_fail(p, ln, "bad timestamp");
    }
    if (!parse_value(c, &s->value))
        return p_fail(p, ln, "bad value");
    p->n_s++;
    return 0;
}

static bool same_series(const struct p_sample *a, const struct p_sample *b, const char *skip)
{
    if (strcmp(a->name, b->name) != 0)
        return false;
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < a->n_labels; i++) {
        if (skip && !strcmp(a->labels[i].name, skip))
            continue;
        na++;
        bool found = false;
        for (size_t j = 0; j < b->n_labels; j++)
            found |= !strcmp(a->labels[i].name, b->labels[j].name) &&
                     !strcmp(a->labels[i].value, b->labels[j].value);
        if (!found)
            return false;
    }
    for (size_t j = 0; j < b->n_labels; j++)
        nb += !(skip && !strcmp(b->labels[j].name, skip));
    return na == nb;
}

static const char *label(const struct p_sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++)
        if (!strcmp(s->labels[i].name, name))
            return s->labels[i].value;
    return NULL;
}

/* Histogram rules for family f: per label set, buckets by increasing le, cumulative, ending
 * with +Inf equal to _count; _sum present. */
static int check_histogram(struct parsed *p, int f)
{
    for (size_t i = 0; i < p->n_s; i++) {
        const struct p_sample *a = &p->s[i];
        if (a->family != f)
            continue;
        char bucket[P_MAX_STR + 8], sum[P_MAX_STR + 8], count[P_MAX_STR + 8];
        (void)snprintf(bucket, sizeof(bucket), "%s_bucket", p->fam[f].name);
        (void)snprintf(sum, sizeof(sum), "%s_sum", p->fam[f].name);
        (void)snprintf(count, sizeof(count), "%s_count", p->fam[f].name);
        if (strcmp(a->name, bucket) && strcmp(a->name, sum) && strcmp(a->name, count))
            return p_fail(p, 0, "histogram sample with a bad suffix");
        if (strcmp(a->name, count) != 0)
            continue;
        /* Walk this label set's buckets in order of appearance. */
        double prev_le = -INFINITY, prev_v = 0, inf_v = -1;
        bool have_sum = false;
        for (size_t j = 0; j < p->n_s; j++) {
            const struct p_sample *b = &p->s[j];
            if (b->family != f)
                continue;
            struct p_sample probe = *b;
            (void)snprintf(probe.name, P_MAX_STR, "%s", a->name);
            if (!same_series(&probe, a, "le"))
                continue;
            if (!strcmp(b->name, sum)) {
                have_sum = true;
            } else if (!strcmp(b->name, bucket)) {
                const char *le = label(b, "le");
                double v;
                if (!le || !parse_value(le, &v))
                    return p_fail(p, 0, "bucket without a valid le");
                if (v <= prev_le)
                    return p_fail(p, 0, "bucket le not increasing");
                if (b->value < prev_v)
                    return p_fail(p, 0, "buckets not cumulative");
                prev_le = v;
                prev_v = b->value;
                if (isinf(v))
                    inf_v = b->value;
            }
        }
        if (inf_v < 0)
            return p_fail(p, 0, "histogram without a +Inf bucket");
        if (inf_v != a->value)
            return p_fail(p, 0, "histogram _count differs from the +Inf bucket");
        if (!have_sum)
            return p_fail(p, 0, "histogram without _sum");
    }
    return 0;
}

static int prom_parse(const char *text, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return p_fail(p, 0, "text must end with a newline");
    char *copy = strdup(text);
    assert_non_null(copy);
    int rc = 0, ln = 0, last_family = -1;
    bool closed[P_MAX_FAMILIES] = {false};
    for (char *line = copy, *next; *line; line = next) {
        next = strchr(line, '\n');
        *next++ = '\0';
        ln++;
        if (line[0] == '#') {
            char kw[8], name[P_MAX_STR], rest[P_MAX_STR];
            if (sscanf(line, "# %7s %255s %255[^\n]", kw, name, rest) < 2) {
                continue; /* a plain comment */
            }
            if (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0)
                continue;
            if (!valid_metric_name(name)) {
                rc = p_fail(p, ln, "invalid name in HELP/TYPE");
                break;
            }
            int f = get_family(p, name);
            if (f < 0) {
                rc = p_fail(p, ln, "too many families");
                break;
            }
            if (closed[f] || (last_family != f && last_family >= 0 && p->fam[f].help)) {
                rc = p_fail(p, ln, "family metadata after its samples or split");
                break;
            }
            for (size_t i = 0; i < p->n_s; i++)
                if (p->s[i].family == f) {
                    rc = p_fail(p, ln, "HELP/TYPE after samples");
                    goto out;
                }
            if (!strcmp(kw, "HELP")) {
                if (p->fam[f].help) {
                    rc = p_fail(p, ln, "second HELP");
                    break;
                }
                p->fam[f].help = true;
            } else {
                static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
                bool ok = false;
                for (size_t i = 0; i < 5; i++)
                    ok |= !strcmp(rest, types[i]);
                if (p->fam[f].has_type || !ok) {
                    rc = p_fail(p, ln, "second or invalid TYPE");
                    break;
                }
                p->fam[f].has_type = true;
                memcpy(p->fam[f].type, rest, strlen(rest) + 1); /* one of types[] */
            }
            if (last_family >= 0 && last_family != f)
                closed[last_family] = true;
            last_family = f;
            continue;
        }
        if (line[0] == '\0') {
            rc = p_fail(p, ln, "empty line");
            break;
        }
        if ((rc = parse_sample(p, ln, line)) < 0)
            break;
        struct p_sample *s = &p->s[p->n_s - 1];
        int f = family_of(p, s->name);
        if (f < 0 || !p->fam[f].help || !p->fam[f].has_type) {
            rc = p_fail(p, ln, "sample without HELP and TYPE before it");
            break;
        }
        if (closed[f] || (last_family >= 0 && last_family != f)) {
            rc = p_fail(p, ln, "family's samples are not contiguous");
            break;
        }
        last_family = f;
        s->family = f;
        if (!strcmp(p->fam[f].type, "counter")) {
            size_t n = strlen(s->name);
            if (n < 6 || strcmp(s->name + n - 6, "_total") != 0 || s->value < 0) {
                rc = p_fail(p, ln, "counter must end in _total and be >= 0");
                break;
            }
        }
        for (size_t i = 0; i + 1 < p->n_s; i++)
            if (same_series(&p->s[i], s, NULL)) {
                rc = p_fail(p, ln, "duplicate series");
                goto out;
            }
    }
    for (size_t f = 0; rc == 0 && f < p->n_fam; f++) {
        if (!p->fam[f].help || !p->fam[f].has_type)
            rc = p_fail(p, 0, "family without HELP or TYPE");
        else if (!strcmp(p->fam[f].type, "histogram"))
            rc = check_histogram(p, (int)f);
    }
out:
    free(copy);
    return rc;
}

static const struct p_sample *find_sample(const struct parsed *p, const char *name,
                                          const char *lname, const char *lvalue)
{
    for (size_t i = 0; i < p->n_s; i++) {
        if (strcmp(p->s[i].name, name) != 0)
            continue;
        if (!lname)
            return &p->s[i];
        const char *v = label(&p->s[i], lname);
        if (v && !strcmp(v, lvalue))
            return &p->s[i];
    }
    return NULL;
}

static const struct p_sample *find_bucket(const struct parsed *p, const char *probe, const char *le)
{
    for (size_t i = 0; i < p->n_s; i++) {
        const char *pv = label(&p->s[i], "probe"), *lv = label(&p->s[i], "le");
        if (!strcmp(p->s[i].name, "etcd_agent_probe_duration_seconds_bucket") && pv && lv &&
            !strcmp(pv, probe) && !strcmp(lv, le))
            return &p->s[i];
    }
    return NULL;
}

/* ---- tests of the parser itself: it must reject what the format forbids --------------- */

static void test_parser_rejects_bad_text(void **state)
{
    (void)state;
    static struct parsed p;
    static const char *const bad[] = {
        "x 1\n",                                                  /* no HELP/TYPE */
        "# HELP x h\n# TYPE x gauge\nx 1",                        /* no final newline */
        "# HELP x h\n# TYPE x gauge\n1x 1\n",                     /* bad name */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n",               /* unterminated */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\t\"} 1\n",           /* bad escape */
        "# HELP x h\n# TYPE x gauge\nx{__a=\"b\"} 1\n",           /* reserved label */
        "# HELP x h\n# TYPE x gauge\nx one\n",                    /* bad value */
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",                 /* duplicate series */
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP x h\n",          /* metadata after samples */
        "# HELP x_total h\n# TYPE x_total counter\nx_total -1\n", /* negative counter */
        "# HELP x h\n# TYPE x counter\nx 1\n",                    /* counter name */
        "# HELP x h\n# TYPE x gauge\n# HELP y h\n# TYPE y gauge\nx 1\n", /* not contiguous */
        ("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
         "h_sum 1\nh_count 1\n"), /* not cumulative */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", /* no _sum */
        "# HELP x h\n# TYPE x gauge\n\nx 1\n",                                  /* empty line */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (prom_parse(bad[i], &p) == 0)
            fail_msg("parser accepted bad input %zu: %s", i, bad[i]);
    }
    assert_int_equal(prom_parse("# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\\\\\\n\"} 1\n", &p), 0);
    assert_string_equal(p.s[0].labels[0].value, "q\"\\\n");
}

/* ---- the agent's output ---------------------------------------------------------------- */

static const struct health_params params = {
    .interval_ms = 1000, .livez_intervals = 30, .stale_ms = 10000};

static char *render_with(struct cache *c, struct parsed *p, const struct metrics_source *src,
                         size_t n_src)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(c, &params, "v1.2-test", src, n_src, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    if (prom_parse(text, p) != 0)
        fail_msg("%s\n--- text ---\n%s", p->err, text);
    return text;
}

static char *render(struct cache *c, struct parsed *p)
{
    return render_with(c, p, NULL, 0);
}

static void test_empty_cache_renders_valid_text(void **state)
{
    (void)state;
    static struct parsed p;
    struct cache *c = cache_new(clock_mono_ms());
    char *text = render(c, &p);
    static const char *const families[] = {
        "etcd_agent_up",
        "etcd_agent_member_healthy",
        "etcd_agent_has_leader",
        "etcd_agent_is_learner",
        "etcd_agent_db_size_bytes",
        "etcd_agent_db_size_in_use_bytes",
        "etcd_agent_raft_index",
        "etcd_agent_alarm",
        "etcd_agent_cluster_members",
        "etcd_agent_probe_duration_seconds",
        "etcd_agent_probe_errors_total",
        "etcd_agent_http_requests_total",
        "etcd_agent_promote_attempts_total",
        "etcd_agent_info",
    };
    for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
        bool found = false;
        for (size_t f = 0; f < p.n_fam; f++)
            found |= !strcmp(p.fam[f].name, families[i]);
        if (!found)
            fail_msg("family %s missing", families[i]);
    }
    assert_float_equal(find_sample(&p, "etcd_agent_up", NULL, NULL)->value, 0, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_member_healthy", NULL, NULL)->value, 0, 0);
    /* Unknown values are absent rather than a misleading 0. */
    assert_null(find_sample(&p, "etcd_agent_db_size_bytes", NULL, NULL));
    assert_null(find_sample(&p, "etcd_agent_cluster_members", NULL, NULL));
    const struct p_sample *info = find_sample(&p, "etcd_agent_info", NULL, NULL);
    assert_non_null(info);
    assert_string_equal(label(info, "version"), "v1.2-test");
    free(text);
    cache_free(c);
}

static void test_full_cache_values(void **state)
{
    (void)state;
    static struct parsed p;
    static struct cache_local l;
    static struct cache_cluster cl;
    int64_t now = clock_mono_ms();
    struct cache *c = cache_new(now - 5000);

    memset(&l, 0, sizeof(l));
    l.probed_at_ms = l.answered_at_ms = l.status_at_ms = now;
    l.status_ok = l.have_status = l.range_ok = l.alarms_ok = true;
    l.status.leader = 0x42;
    l.status.db_size = 123456;
    l.status.db_size_in_use = 65536;
    l.status.raft_index = 987654321;
    (void)snprintf(l.status.version, sizeof(l.status.version), "3.4.23");
    l.alarms[0].type = 1;
    l.alarms[0].member_id = 7;
    l.n_alarms = 1;
    assert_int_equal(cache_publish_local(c, &l), 0);

    memset(&cl, 0, sizeof(cl));
    cl.probed_at_ms = now;
    cl.ok = true;
    cl.n_members = 4;
    for (size_t i = 0; i < 4; i++)
        cl.members[i].started = true;
    cl.members[0].healthy = cl.members[1].healthy = true;
    cl.members[3].is_learner = true;
    assert_int_equal(cache_publish_cluster(c, &cl), 0);

    cache_count_probe(c, CACHE_PROBE_LOCAL, 0.0005);
    cache_count_probe(c, CACHE_PROBE_LOCAL, 0.003);
    cache_count_probe(c, CACHE_PROBE_LOCAL, 0.2);
    cache_count_probe(c, CACHE_PROBE_LOCAL, 100);
    cache_count_error(c, CACHE_CALL_RANGE);
    cache_count_error(c, CACHE_CALL_RANGE);
    cache_count_promote(c);
    cache_count_http(c, "/readyz", 200);
    cache_count_http(c, "/readyz", 200);
    cache_count_http(c, "/readyz", 503);
    cache_count_http(c, "/we\"ird\\\n", 404); /* escaping, even if routes never do this */

    char *text = render(c, &p);
    assert_float_equal(find_sample(&p, "etcd_agent_up", NULL, NULL)->value, 1, 0);
    /* The alarm fails readiness. */
    assert_float_equal(find_sample(&p, "etcd_agent_member_healthy", NULL, NULL)->value, 0, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_has_leader", NULL, NULL)->value, 1, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_is_learner", NULL, NULL)->value, 0, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_db_size_bytes", NULL, NULL)->value, 123456, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_db_size_in_use_bytes", NULL, NULL)->value, 65536,
                       0);
    assert_float_equal(find_sample(&p, "etcd_agent_raft_index", NULL, NULL)->value, 987654321, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_alarm", "type", "NOSPACE")->value, 1, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_alarm", "type", "CORRUPT")->value, 0, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_cluster_members", "state", "healthy")->value, 2,
                       0);
    assert_float_equal(find_sample(&p, "etcd_agent_cluster_members", "state", "unhealthy")->value,
                       1, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_cluster_members", "state", "learner")->value, 1,
                       0);
    assert_float_equal(find_sample(&p, "etcd_agent_cluster_members", "state", "unstarted")->value,
                       0, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_cluster_quorum", NULL, NULL)->value, 1, 0);

    assert_float_equal(find_bucket(&p, "local", "0.001")->value, 1, 0);
    assert_float_equal(find_bucket(&p, "local", "0.005")->value, 2, 0);
    assert_float_equal(find_bucket(&p, "local", "0.25")->value, 3, 0);
    assert_float_equal(find_bucket(&p, "local", "5")->value, 3, 0);
    assert_float_equal(find_bucket(&p, "local", "+Inf")->value, 4, 0);
    assert_float_equal(find_bucket(&p, "cluster", "+Inf")->value, 0, 0);
    assert_float_equal(
        find_sample(&p, "etcd_agent_probe_duration_seconds_sum", "probe", "local")->value, 100.2035,
        1e-9);
    assert_float_equal(
        find_sample(&p, "etcd_agent_probe_duration_seconds_count", "probe", "local")->value, 4, 0);
    assert_float_equal(find_sample(&p, "etcd_agent_probe_errors_total", "call", "range")->value, 2,
                       0);
    assert_float_equal(find_sample(&p, "etcd_agent_probe_errors_total", "call", "status")->value, 0,
                       0);
    assert_float_equal(find_sample(&p, "etcd_agent_promote_attempts_total", NULL, NULL)->value, 1,
                       0);

    size_t n200 = 0, n503 = 0, nweird = 0;
    for (size_t i = 0; i < p.n_s; i++) {
        if (strcmp(p.s[i].name, "etcd_agent_http_requests_total") != 0)
            continue;
        const char *path = label(&p.s[i], "path"), *code = label(&p.s[i], "code");
        assert_non_null(path);
        assert_non_null(code);
        if (!strcmp(path, "/readyz") && !strcmp(code, "200"))
            n200 = (size_t)p.s[i].value;
        if (!strcmp(path, "/readyz") && !strcmp(code, "503"))
            n503 = (size_t)p.s[i].value;
        if (!strcmp(path, "/we\"ird\\\n") && !strcmp(code, "404"))
            nweird = (size_t)p.s[i].value;
    }
    assert_int_equal(n200, 2);
    assert_int_equal(n503, 1);
    assert_int_equal(nweird, 1);
    assert_string_equal(label(find_sample(&p, "etcd_agent_info", NULL, NULL), "etcd_version"),
                        "3.4.23");
    free(text);
    cache_free(c);
}

/* Many HTTP series stay bounded: the table caps, the text stays valid. */
static void test_http_series_bounded(void **state)
{
    (void)state;
    static struct parsed p;
    struct cache *c = cache_new(clock_mono_ms());
    for (int code = 100; code < 100 + 3 * CACHE_MAX_HTTP_SERIES; code++)
        cache_count_http(c, "other", code);
    struct cache_counters k;
    cache_counters(c, &k);
    assert_int_equal(k.n_http, CACHE_MAX_HTTP_SERIES);
    assert_int_equal(k.http_dropped, 2 * CACHE_MAX_HTTP_SERIES);
    free(render(c, &p));
    cache_free(c);
}

/* A feature's own families (as snapshots will add) go through a source. */
static void snapshot_source(void *arg, struct metrics_writer *w)
{
    int *calls = arg;
    (*calls)++;
    metrics_family(w, "etcd_agent_snapshots_total", "counter", "Snapshots served.");
    static const char *const ok[] = {"result", "ok", NULL};
    static const char *const bad[] = {"result", "digest \"mismatch\"\\\n", NULL};
    metrics_sample(w, "etcd_agent_snapshots_total", ok, 3);
    metrics_sample(w, "etcd_agent_snapshots_total", bad, 1);
    metrics_family(w, "etcd_agent_snapshot_in_flight", "gauge", "Upstream snapshots running.");
    metrics_sample(w, "etcd_agent_snapshot_in_flight", NULL, 0);
}

static void test_sources(void **state)
{
    (void)state;
    static struct parsed p;
    struct cache *c = cache_new(clock_mono_ms());
    int calls = 0;
    struct metrics_source src = {snapshot_source, &calls};
    char *text = render_with(c, &p, &src, 1);
    assert_int_equal(calls, 1);
    assert_float_equal(find_sample(&p, "etcd_agent_snapshots_total", "result", "ok")->value, 3, 0);
    assert_float_equal(
        find_sample(&p, "etcd_agent_snapshots_total", "result", "digest \"mismatch\"\\\n")->value,
        1, 0);
    assert_non_null(find_sample(&p, "etcd_agent_snapshot_in_flight", NULL, NULL));
    assert_non_null(strstr(text, "etcd_agent_snapshot_in_flight 0\n"));
    free(text);
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_rejects_bad_text),
        cmocka_unit_test(test_empty_cache_renders_valid_text),
        cmocka_unit_test(test_full_cache_values),
        cmocka_unit_test(test_http_series_bounded),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
