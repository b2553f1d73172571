/* testutil.c - helpers shared by the test programs; see testutil.h. */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int test_time_scale(void)
{
    const char *s = getenv("TEST_TIME_SCALE");
    uint64_t v;

    if (!s || config_parse_u64(s, 1, 100, &v) != 0)
        return 1;
    return (int)v;
}
