/* maint_table.c - the cluster table in etcdctl's table format (maint_table.h).
 *
 * Column widths are computed from the cells, as etcdctl's tablewriter does; the verdict per
 * member comes from cache_verdict and the last HashKV check. Serving it is routes.c's. */
#include "maint_table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLS 9
#define CELL 160

static const char *const heads[COLS] = {"ENDPOINT", "HEALTH", "TOOK",   "ERROR",  "LEARNER",
                                        "DB SIZE",  "LEADER", "HASHKV", "VERDICT"};

static void human_size(char *out, size_t cap, int64_t b)
{
    /* etcdctl's humanize.Bytes: SI units, one decimal under 10 */
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)b;
    size_t u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        (void)snprintf(out, cap, "%" PRId64 " B", b);
    else
        (void)snprintf(out, cap, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

struct buf {
    char *p;
    size_t len, cap;
    int err;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->cap) {
        b->err = -E2BIG;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void rule(struct buf *b, const size_t *w)
{
    for (size_t c = 0; c < COLS; c++) {
        put(b, "+", 1);
        for (size_t i = 0; i < w[c] + 2; i++)
            put(b, "-", 1);
    }
    put(b, "+\n", 2);
}

/* Headers centred, cells left-aligned, as etcdctl prints them. */
static void row(struct buf *b, const size_t *w, char cells[COLS][CELL], int centre)
{
    for (size_t c = 0; c < COLS; c++) {
        size_t n = strlen(cells[c]);
        size_t pad = w[c] - n, left = centre ? pad / 2 + pad % 2 : 0;
        put(b, "| ", 2);
        for (size_t i = 0; i < left; i++)
            put(b, " ", 1);
        put(b, cells[c], n);
        for (size_t i = 0; i < pad - left + 1; i++)
            put(b, " ", 1);
    }
    put(b, "|\n", 2);
}

int maint_table_render(const struct cache_snapshot *s, uint64_t leader, char **out, size_t *len)
{
    const struct cache_cluster *cl = &s->cluster;
    const struct cache_maint *mt = &s->maint;
    struct cache_verdict v;
    cache_verdict(cl, &v);
    size_t n = cl->n_members < CACHE_MAX_MEMBERS ? cl->n_members : CACHE_MAX_MEMBERS;
    char(*cells)[COLS][CELL] = calloc(n + 1, sizeof(*cells));
    struct buf b = {.p = malloc(MAINT_TABLE_MAX_BYTES), .cap = MAINT_TABLE_MAX_BYTES};
    if (!cells || !b.p) {
        free(cells);
        free(b.p);
        return -ENOMEM;
    }
    size_t w[COLS];
    for (size_t c = 0; c < COLS; c++) {
        (void)snprintf(cells[0][c], CELL, "%s", heads[c]);
        w[c] = strlen(heads[c]);
    }
    for (size_t i = 0; i < n; i++) {
        const struct cache_member *m = &cl->members[i];
        char(*r)[CELL] = cells[i + 1];
        (void)snprintf(r[0], CELL, "%s", m->n_client_urls ? m->client_urls[0] : m->name);
        (void)snprintf(r[1], CELL, "%s", m->healthy ? "true" : "false");
        if (m->answered || m->took_ms)
            (void)snprintf(r[2], CELL, "%" PRIu32 "ms", m->took_ms);
        (void)snprintf(r[3], CELL, "%.150s", m->healthy ? "" : m->error);
        (void)snprintf(r[4], CELL, "%s", m->is_learner ? "true" : "false");
        if (m->answered)
            human_size(r[5], CELL, m->status.db_size);
        (void)snprintf(r[6], CELL, "%s", leader && m->id == leader ? "true" : "false");
        const struct cache_maint_member *h = NULL;
        for (size_t j = 0; j < mt->n_members; j++)
            if (mt->members[j].id == m->id)
                h = &mt->members[j];
        if (h && h->hash_ok)
            (void)snprintf(r[7], CELL, "%08" PRIx32, h->hash);
        bool failing = false;
        for (size_t j = 0; j < v.n_failing; j++)
            failing |= v.failing[j] == i;
        (void)snprintf(r[8], CELL, "%s",
                       h && h->divergent ? "divergent"
                       : failing         ? "failing"
                       : !m->started     ? "not started"
                       : m->is_learner   ? "learner"
                                         : "ok");
        for (size_t c = 0; c < COLS; c++)
            if (strlen(r[c]) > w[c])
                w[c] = strlen(r[c]);
    }
    rule(&b, w);
    row(&b, w, cells[0], 1);
    rule(&b, w);
    for (size_t i = 0; i < n; i++)
        row(&b, w, cells[i + 1], 0);
    rule(&b, w);
    if (mt->hashkv_verdict[0]) {
        char line[160];
        int k = snprintf(line, sizeof(line), "hashkv at revision %" PRId64 ": %s\n",
                         mt->hashkv_revision, mt->hashkv_verdict);
        if (k > 0)
            put(&b, line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
    }
    free(cells);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
