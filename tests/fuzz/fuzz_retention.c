/* fuzz_retention.c - libFuzzer target for common/retention.c: the input up to the first NUL is a
 * --backup-keep value (parsed; errors must be one line); the rest becomes a clock and a list of
 * backups (9 bytes each: time, good flag) judged with the parsed policy (or a fixed one), and the
 * invariants are checked: nothing pruned without a newer good backup that is not in the future,
 * the newest good one always kept, each tier keeping at most its count. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retention.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_BACKUPS 256

static int64_t get_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    /* mostly times near 2026, sometimes anything */
    if ((v & 0xff) < 0xf0)
        return 1764720000 + (int64_t)(v >> 8) % (3 * 365 * 86400LL);
    return (int64_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct retention_policy p = {.tier = {24, 7, 4, 12}};
    struct retention_backup b[FUZZ_MAX_BACKUPS];
    struct retention_verdict v[FUZZ_MAX_BACKUPS];
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul != NULL ? (size_t)(nul - data) : size, n = 0, pos;
    char *s = malloc(slen + 1), err[256], buf[256];
    int64_t now, future;
    size_t per_tier[RETENTION_TIERS] = {0}, kept_last = 0;
    bool any_good_past = false;

    if (s == NULL)
        return 0;
    memcpy(s, data, slen);
    s[slen] = '\0';
    if (retention_parse(s, &p, err, sizeof err) != 0) {
        if (err[0] == '\0' || strchr(err, '\n') != NULL)
            abort();
        p = (struct retention_policy){.tier = {24, 7, 4, 12}};
    } else {
        struct retention_policy again;
        if (retention_parse(retention_policy_str(&p, buf, sizeof buf), &again, err, sizeof err) !=
                0 ||
            memcmp(&again, &p, sizeof p) != 0)
            abort();
    }
    free(s);
    pos = nul != NULL ? slen + 1 : size;
    if (size - pos < 8)
        return 0;
    now = get_i64(data + pos);
    pos += 8;
    while (size - pos >= 9 && n < FUZZ_MAX_BACKUPS) {
        b[n].time = get_i64(data + pos);
        b[n].good = data[pos + 8] & 1;
        pos += 9;
        n++;
    }
    if (retention_decide(&p, b, n, now, v) != 0)
        abort();
    future =
        now > INT64_MAX - RETENTION_FUTURE_SLACK_S ? INT64_MAX : now + RETENTION_FUTURE_SLACK_S;
    for (size_t i = 0; i < n; i++) {
        bool newer_good = false;
        (void)retention_reason_str(v[i].reasons, buf, sizeof buf);
        if (buf[0] == '\0')
            abort();
        any_good_past = any_good_past || (b[i].good && b[i].time <= future);
        for (size_t j = 0; j < n; j++) {
            if (j != i && b[j].good && b[j].time <= future &&
                (b[j].time > b[i].time || (b[j].time == b[i].time && j < i)))
                newer_good = true;
        }
        if (!v[i].keep && !newer_good)
            abort(); /* pruned without a newer good backup */
        if (b[i].good && b[i].time <= future && !newer_good &&
            !(v[i].keep && (v[i].reasons & RETENTION_KEEP_NEWEST_GOOD)))
            abort(); /* the last good backup must stay */
        for (int t = 0; t < RETENTION_TIERS; t++)
            per_tier[t] += (v[i].reasons & (RETENTION_KEEP_HOURLY << t)) != 0;
        kept_last += (v[i].reasons & RETENTION_KEEP_LAST) != 0 && (p.last != 0);
    }
    for (int t = 0; t < RETENTION_TIERS; t++) {
        if (per_tier[t] > p.tier[t])
            abort();
    }
    if (p.last != 0 && kept_last > p.last)
        abort();
    (void)any_good_past;
    return 0;
}
