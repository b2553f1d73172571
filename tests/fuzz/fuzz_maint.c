/* fuzz_maint.c - libFuzzer target for the maintenance parsers: etcd_metrics_quota over the input
 * as a /metrics page, and maint_plan_parse_size over it as a flag value (NUL-terminated copy).
 * Invariants: a parsed quota or size is never negative. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "fuzz_input.h"
#include "maint_plan.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char *text = fuzz_copy_exact(data, size);
    if (!text)
        return 0;
    int64_t q = 0;
    if (etcd_metrics_quota(text, size, &q) == 0 && q < 0)
        abort();
    free(text);
    char *s = fuzz_copy_str(data, size);
    if (!s)
        return 0;
    int64_t v = 0;
    if (maint_plan_parse_size(s, &v) == 0 && v < 0)
        abort();
    free(s);
    return 0;
}
