/* backup_turn.c - whose turn it is to back up, and backup object names (backup_turn.h).
 * Pure: every input comes from the caller. */
#include "backup_turn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *backup_turn_verdict_str(enum backup_turn_verdict v)
{
    switch (v) {
    case BACKUP_TURN_GO:
        return "go";
    case BACKUP_TURN_NOT_DUE:
        return "not due";
    case BACKUP_TURN_NO_LEADER:
        return "no leader";
    case BACKUP_TURN_NO_QUORUM:
        return "no quorum";
    case BACKUP_TURN_NOT_VOTER:
        return "not a voter";
    case BACKUP_TURN_UNHEALTHY:
        return "member unhealthy";
    case BACKUP_TURN_LAGGING:
        return "member lagging";
    }
    return "?";
}

/* a sorts before b: non-leaders first, then by ID */
static bool before(const struct backup_turn_member *a, const struct backup_turn_member *b,
                   uint64_t leader)
{
    bool al = a->id == leader, bl = b->id == leader;
    if (al != bl)
        return bl;
    return a->id < b->id;
}

int backup_turn_rank(const struct backup_turn_input *in)
{
    const struct backup_turn_member *self = NULL;
    for (size_t i = 0; i < in->n_members; i++)
        if (in->members[i].id == in->self)
            self = &in->members[i];
    if (!self || !self->voter || !self->healthy)
        return -1;
    int rank = 0;
    for (size_t i = 0; i < in->n_members; i++) {
        const struct backup_turn_member *m = &in->members[i];
        if (m != self && m->voter && m->healthy && before(m, self, in->leader))
            rank++;
    }
    return rank;
}

/* the newest backup's time; an empty store counts as one an interval older than our start */
static int64_t newest_or_start(const struct backup_turn_input *in)
{
    return in->newest_ms >= 0 ? in->newest_ms : in->start_ms - (int64_t)in->interval_ms;
}

static bool older_than(const struct backup_turn_input *in, int64_t t, uint64_t ms)
{
    return in->now_ms >= t && (uint64_t)(in->now_ms - t) >= ms;
}

int64_t backup_turn_due_since(const struct backup_turn_input *in)
{
    if (!older_than(in, newest_or_start(in), in->interval_ms))
        return -1;
    return in->due_since_ms >= 0 ? in->due_since_ms : in->now_ms;
}

enum backup_turn_verdict backup_turn_decide(const struct backup_turn_input *in, int *rank)
{
    int r = backup_turn_rank(in);
    if (rank)
        *rank = r;
    size_t voters = 0, healthy = 0;
    uint64_t top = 0;
    const struct backup_turn_member *self = NULL;
    for (size_t i = 0; i < in->n_members; i++) {
        const struct backup_turn_member *m = &in->members[i];
        if (m->id == in->self)
            self = m;
        if (!m->voter)
            continue;
        voters++;
        if (m->healthy) {
            healthy++;
            if (m->raft_index > top)
                top = m->raft_index;
        }
    }
    if (!self || !self->voter)
        return BACKUP_TURN_NOT_VOTER;
    if (!in->leader)
        return BACKUP_TURN_NO_LEADER;
    if (healthy * 2 <= voters)
        return BACKUP_TURN_NO_QUORUM;
    if (!self->healthy)
        return BACKUP_TURN_UNHEALTHY;
    if (self->raft_index + in->max_lag < top)
        return BACKUP_TURN_LAGGING;
    uint64_t behind = (uint64_t)r * in->grace_ms;
    if (!older_than(in, newest_or_start(in), in->interval_ms + behind))
        return BACKUP_TURN_NOT_DUE;
    if (r > 0 && (in->due_since_ms < 0 || !older_than(in, in->due_since_ms, behind)))
        return BACKUP_TURN_NOT_DUE;
    return BACKUP_TURN_GO;
}

int backup_name_format(char *out, size_t len, uint64_t cluster_id, time_t t, int64_t revision,
                       bool zstd, bool age)
{
    struct tm tm;
    char when[32];
    if (!gmtime_r(&t, &tm) || strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm) == 0)
        return -EINVAL;
    int n = snprintf(out, len, "%016llx/%s-rev%lld.db%s%s", (unsigned long long)cluster_id, when,
                     (long long)revision, zstd ? ".zst" : "", age ? ".age" : "");
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int backup_name_parse(const char *name, time_t *t, int64_t *revision)
{
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    if (strlen(b) < 24 || !digits(b, 8) || b[8] != 'T' || !digits(b + 9, 6) || b[15] != 'Z' ||
        strncmp(b + 16, "-rev", 4) != 0)
        return -EINVAL;
    const char *p = b + 20, *dot = strchr(p, '.');
    if (!dot || dot - p > 18 || !digits(p, (size_t)(dot - p)))
        return -EINVAL;
    if (strcmp(dot, ".db") != 0 && strcmp(dot, ".db.zst") != 0 && strcmp(dot, ".db.age") != 0 &&
        strcmp(dot, ".db.zst.age") != 0)
        return -EINVAL;
    int64_t r = 0;
    for (; p < dot; p++)
        r = r * 10 + (*p - '0');
    struct tm tm = {.tm_year = num(b, 4) - 1900,
                    .tm_mon = num(b + 4, 2) - 1,
                    .tm_mday = num(b + 6, 2),
                    .tm_hour = num(b + 9, 2),
                    .tm_min = num(b + 11, 2),
                    .tm_sec = num(b + 13, 2)};
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -EINVAL;
    *t = timegm(&tm);
    *revision = r;
    return 0;
}
