/* clock.h - the project's one monotonic clock (CLOCK_MONOTONIC: never steps with the wall
 * clock). Every timeout, deadline and duration reads it; wall-clock time (log timestamps,
 * snapshot names) is the caller's own business. */
#ifndef ER_CLOCK_H
#define ER_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds since an arbitrary fixed point (boot); only differences mean anything. */
static inline int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The same clock in microseconds and milliseconds (truncated). */
static inline int64_t clock_mono_us(void)
{
    return clock_mono_ns() / 1000;
}

static inline int64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000;
}

#endif
