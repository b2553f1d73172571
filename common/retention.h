/* retention.h - which backups to keep and which to prune, as a pure function over a list of
 * backup times, and the parser of --backup-keep. Listing the store, deleting objects and
 * logging the verdicts are the backup module's. */
#ifndef ER_RETENTION_H
#define ER_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

enum retention_tier {
    RETENTION_HOURLY,
    RETENTION_DAILY,
    RETENTION_WEEKLY, /* ISO weeks: Monday 00:00 UTC to Sunday 24:00 */
    RETENTION_MONTHLY,
    RETENTION_TIERS,
};

/* --backup-keep: "N" (the newest N good backups) or "last=N,hourly=N,daily=N,weekly=N,monthly=N"
 * in any order, each key at most once, each N in [1, RETENTION_MAX_COUNT]. */
struct retention_policy {
    uint32_t last;                  /* newest good backups kept; 0 = no such rule */
    uint32_t tier[RETENTION_TIERS]; /* periods kept per tier; 0 = no such rule */
};

/* One backup as the store lists it. time: UTC seconds since the epoch (from its name); good:
 * complete (manifest present, sizes match) and verified. */
struct retention_backup {
    int64_t time;
    bool good;
};

/* Why a backup is kept (bits; several may hold) or pruned (exactly one PRUNE_ bit). */
enum retention_reason {
    RETENTION_KEEP_LAST = 1u << 0,         /* among the newest `last` good backups */
    RETENTION_KEEP_HOURLY = 1u << 1,       /* newest good backup of one of the kept hours */
    RETENTION_KEEP_DAILY = 1u << 2,        /* ... days */
    RETENTION_KEEP_WEEKLY = 1u << 3,       /* ... ISO weeks */
    RETENTION_KEEP_MONTHLY = 1u << 4,      /* ... months */
    RETENTION_KEEP_NEWEST_GOOD = 1u << 5,  /* the last good backup: never deleted */
    RETENTION_KEEP_UNSUPERSEDED = 1u << 6, /* no newer good backup exists yet */
    RETENTION_KEEP_FUTURE = 1u << 7,       /* dated after now + RETENTION_FUTURE_SLACK_S */
    RETENTION_PRUNE_EXPIRED = 1u << 8,     /* good, but outside every rule */
    RETENTION_PRUNE_REDUNDANT = 1u << 9,   /* good, a newer good one stands for its periods */
    RETENTION_PRUNE_UNVERIFIED = 1u << 10, /* not good, and a newer good backup exists */
};

struct retention_verdict {
    bool keep;
    unsigned reasons; /* enum retention_reason bits */
};

/* Parses `s` into *p. Returns 0, or -EINVAL with a one-line reason in err (quoting at most
 * CONFIG_ERR_QUOTE bytes of the input). */
int retention_parse(const char *s, struct retention_policy *p, char *err, size_t errlen);

/* Decides, for each of the n backups (any order; equal times allowed), whether to keep it:
 * out[i] is the verdict for b[i]. Rules, in this order:
 *  - with no good backup, nothing is pruned;
 *  - a backup dated after now + RETENTION_FUTURE_SLACK_S is kept and counts for nothing (a
 *    writer's clock was wrong: it neither fills a period nor supersedes an older backup);
 *  - the newest good backup is kept; so is every backup newer than it (in progress, or not
 *    verified yet): deletion only ever follows a newer good backup;
 *  - `last` keeps the newest N good backups; a tier of N keeps the newest good backup of each
 *    of the N newest periods (UTC hours, days, ISO weeks, months) that hold a good backup, so a
 *    gap in backups (or a clock jumped forward) never makes older backups expire faster;
 *  - the rest is pruned: older unverified ones, extra ones within a period, expired ones.
 * A policy with no rule at all keeps everything. Returns 0, or -EINVAL for a NULL array with
 * n > 0 or n > RETENTION_MAX_BACKUPS. Pure: no clock, no I/O, no allocation. */
int retention_decide(const struct retention_policy *p, const struct retention_backup *b, size_t n,
                     int64_t now, struct retention_verdict *out);

/* Writes the reasons as words ("hourly+daily", "expired", "unverified, superseded") into buf;
 * returns buf. */
const char *retention_reason_str(unsigned reasons, char *buf, size_t len);

/* Period index of `t` in tier `tier` (UTC; floor division, so valid before 1970). Exposed for
 * tests. */
int64_t retention_period(enum retention_tier tier, int64_t t);

/* Writes the policy back in --backup-keep form ("hourly=24,daily=7"); returns buf. */
const char *retention_policy_str(const struct retention_policy *p, char *buf, size_t len);

#endif
