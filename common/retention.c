/* retention.c - --backup-keep parsing and the keep/prune verdicts over a list of backups (see
 * retention.h for the rules). Pure: the caller lists the store, deletes and logs. */
#include "retention.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "config.h"
#include "errbuf.h"

static const char *const tier_names[RETENTION_TIERS] = {"hourly", "daily", "weekly", "monthly"};

/* length of a quote in an error message */
static int q(size_t len)
{
    return len > CONFIG_ERR_QUOTE ? CONFIG_ERR_QUOTE : (int)len;
}

/* one "key=value" or bare "N" item of length len */
static int parse_item(const char *item, size_t len, bool bare_ok, struct retention_policy *p,
                      char *err, size_t errlen)
{
    char num[24];
    const char *eq = memchr(item, '=', len);
    const char *val = eq != NULL ? eq + 1 : item;
    size_t klen = eq != NULL ? (size_t)(eq - item) : 0, vlen = len - (size_t)(val - item);
    uint32_t *slot = NULL;
    uint64_t v;

    if (len == 0) {
        errbuf_set(err, errlen, "--backup-keep: empty item (two commas, or one at an end)");
        return -EINVAL;
    }
    if (eq == NULL) {
        if (!bare_ok || isalpha((unsigned char)item[0])) {
            errbuf_set(err, errlen,
                       "--backup-keep: \"%.*s\" is not KEY=N (keys: last, hourly, daily, weekly, "
                       "monthly)",
                       q(len), item);
            return -EINVAL;
        }
        slot = &p->last;
    } else if (klen == 4 && memcmp(item, "last", 4) == 0) {
        slot = &p->last;
    } else {
        for (int t = 0; t < RETENTION_TIERS; t++) {
            if (klen == strlen(tier_names[t]) && memcmp(item, tier_names[t], klen) == 0)
                slot = &p->tier[t];
        }
        if (slot == NULL) {
            errbuf_set(err, errlen,
                       "--backup-keep: unknown key \"%.*s\" (keys: last, hourly, daily, weekly, "
                       "monthly)",
                       q(klen), item);
            return -EINVAL;
        }
    }
    if (*slot != 0) {
        errbuf_set(err, errlen, "--backup-keep: \"%.*s\" given twice", q(eq != NULL ? klen : 4),
                   eq != NULL ? item : "last");
        return -EINVAL;
    }
    if (vlen == 0 || vlen >= sizeof num) {
        errbuf_set(err, errlen, "--backup-keep: \"%.*s\" needs a number of at least 1", q(len),
                   item);
        return -EINVAL;
    }
    memcpy(num, val, vlen);
    num[vlen] = '\0';
    if (config_parse_u64(num, 1, RETENTION_MAX_COUNT, &v) != 0) {
        errbuf_set(err, errlen, "--backup-keep: \"%.*s\": want a number from 1 to %u", q(len), item,
                   (unsigned)RETENTION_MAX_COUNT);
        return -EINVAL;
    }
    *slot = (uint32_t)v;
    return 0;
}

int retention_parse(const char *s, struct retention_policy *p, char *err, size_t errlen)
{
    struct retention_policy np = {0};
    const char *pos;
    size_t len;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (s == NULL || p == NULL || s[0] == '\0') {
        errbuf_set(err, errlen,
                   "--backup-keep: empty (want N, or KEY=N,... with keys last, hourly, "
                   "daily, weekly, monthly)");
        return -EINVAL;
    }
    len = strnlen(s, CONFIG_MAX_VALUE);
    if (len >= CONFIG_MAX_VALUE) {
        errbuf_set(err, errlen, "--backup-keep: too long (\"%.*s...\")", q(len), s);
        return -EINVAL;
    }
    pos = s;
    for (;;) {
        const char *comma = strchr(pos, ',');
        size_t ilen = comma != NULL ? (size_t)(comma - pos) : strlen(pos);
        /* a bare number is the whole value ("7"), never one item of a list */
        bool bare_ok = pos == s && comma == NULL;

        if (parse_item(pos, ilen, bare_ok, &np, err, errlen) != 0)
            return -EINVAL;
        if (comma == NULL)
            break;
        pos = comma + 1;
    }
    *p = np;
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t retention_period(enum retention_tier tier, int64_t t)
{
    int64_t days = floor_div(t, 86400);

    switch (tier) {
    case RETENTION_HOURLY:
        return floor_div(t, 3600);
    case RETENTION_DAILY:
        return days;
    case RETENTION_WEEKLY:
        /* 1970-01-01 was a Thursday: day -3 (1969-12-29) is the Monday of week 0 */
        return floor_div(days + 3, 7);
    case RETENTION_MONTHLY: {
        /* civil-from-days (proleptic Gregorian), months counted from year 0 */
        int64_t z = days + 719468;
        int64_t era = floor_div(z, 146097);
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int64_t month = mp < 10 ? mp + 3 : mp - 9; /* 1..12 */
        int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
        return year * 12 + (month - 1);
    }
    default:
        return 0;
    }
}

/* order of judging: newest first; equal times by index, so the verdict is deterministic */
struct retention_key {
    int64_t time;
    size_t i;
};

static int cmp_newest_first(const void *pa, const void *pb)
{
    const struct retention_key *a = pa, *b = pb;
    if (a->time != b->time)
        return a->time > b->time ? -1 : 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

static int decide_sorted(const struct retention_policy *p, const struct retention_backup *b,
                         const struct retention_key *idx, size_t n, int64_t now,
                         struct retention_verdict *out)
{
    static const unsigned tier_bit[RETENTION_TIERS] = {
        RETENTION_KEEP_HOURLY, RETENTION_KEEP_DAILY, RETENTION_KEEP_WEEKLY, RETENTION_KEEP_MONTHLY};
    uint32_t left_last = p->last, left[RETENTION_TIERS];
    int64_t last_period[RETENTION_TIERS];
    bool have_period[RETENTION_TIERS] = {false};
    bool any_rule = p->last != 0, seen_good = false;
    int64_t future =
        now > INT64_MAX - RETENTION_FUTURE_SLACK_S ? INT64_MAX : now + RETENTION_FUTURE_SLACK_S;

    for (int t = 0; t < RETENTION_TIERS; t++) {
        left[t] = p->tier[t];
        last_period[t] = 0;
        any_rule = any_rule || p->tier[t] != 0;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k].i;
        struct retention_verdict *v = &out[i];

        v->keep = true;
        v->reasons = 0;
        if (b[i].time > future) {
            v->reasons = RETENTION_KEEP_FUTURE;
            continue;
        }
        if (!seen_good) {
            if (!b[i].good) {
                v->reasons = RETENTION_KEEP_UNSUPERSEDED;
                continue;
            }
            v->reasons = RETENTION_KEEP_NEWEST_GOOD;
        } else if (!b[i].good) {
            v->keep = false;
            v->reasons = RETENTION_PRUNE_UNVERIFIED;
            continue;
        }
        seen_good = true;
        /* a good backup: every rule looks at it */
        if (left_last > 0) {
            left_last--;
            v->reasons |= RETENTION_KEEP_LAST;
        }
        for (int t = 0; t < RETENTION_TIERS; t++) {
            int64_t per = retention_period((enum retention_tier)t, b[i].time);
            if (left[t] == 0 || (have_period[t] && per == last_period[t]))
                continue;
            have_period[t] = true;
            last_period[t] = per;
            left[t]--;
            v->reasons |= tier_bit[t];
        }
        if (v->reasons == 0) {
            if (!any_rule) {
                v->reasons = RETENTION_KEEP_LAST; /* no rule: keep all */
                continue;
            }
            v->keep = false;
            /* redundant: some tier's period of this backup is already represented */
            v->reasons = RETENTION_PRUNE_EXPIRED;
            for (int t = 0; t < RETENTION_TIERS; t++) {
                if (p->tier[t] != 0 && have_period[t] &&
                    retention_period((enum retention_tier)t, b[i].time) == last_period[t])
                    v->reasons = RETENTION_PRUNE_REDUNDANT;
            }
        }
    }
    return 0;
}

int retention_decide(const struct retention_policy *p, const struct retention_backup *b, size_t n,
                     int64_t now, struct retention_verdict *out)
{
    struct retention_key *idx;
    int rc;

    if (p == NULL || n > RETENTION_MAX_BACKUPS || (n > 0 && (b == NULL || out == NULL)))
        return -EINVAL;
    if (n == 0)
        return 0;
    idx = malloc(n * sizeof *idx);
    if (idx == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        idx[i] = (struct retention_key){b[i].time, i};
    qsort(idx, n, sizeof *idx, cmp_newest_first);
    rc = decide_sorted(p, b, idx, n, now, out);
    free(idx);
    return rc;
}

const char *retention_reason_str(unsigned reasons, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *word;
    } words[] = {
        {RETENTION_KEEP_NEWEST_GOOD, "newest good"},
        {RETENTION_KEEP_LAST, "last"},
        {RETENTION_KEEP_HOURLY, "hourly"},
        {RETENTION_KEEP_DAILY, "daily"},
        {RETENTION_KEEP_WEEKLY, "weekly"},
        {RETENTION_KEEP_MONTHLY, "monthly"},
        {RETENTION_KEEP_UNSUPERSEDED, "no newer good backup"},
        {RETENTION_KEEP_FUTURE, "dated in the future"},
        {RETENTION_PRUNE_EXPIRED, "expired"},
        {RETENTION_PRUNE_REDUNDANT, "not the newest of its period"},
        {RETENTION_PRUNE_UNVERIFIED, "unverified, superseded"},
    };
    size_t used = 0;

    if (buf == NULL || len == 0)
        return "";
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        int w;
        if ((reasons & words[i].bit) == 0)
            continue;
        w = snprintf(buf + used, len - used, "%s%s", used > 0 ? "+" : "", words[i].word);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
    return buf;
}

const char *retention_policy_str(const struct retention_policy *p, char *buf, size_t len)
{
    size_t used = 0;

    if (buf == NULL || len == 0)
        return "";
    buf[0] = '\0';
    for (int t = -1; t < RETENTION_TIERS; t++) {
        uint32_t v = t < 0 ? p->last : p->tier[t];
        int w;
        if (v == 0)
            continue;
        w = snprintf(buf + used, len - used, "%s%s=%u", used > 0 ? "," : "",
                     t < 0 ? "last" : tier_names[t], (unsigned)v);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
    return buf;
}
