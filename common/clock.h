/* clock.h - the project's one monotonic clock (CLOCK_MONOTONIC: never steps with the wall
 * clock). Every timeout, deadline and duration reads it. Wall-clock time only where it is
 * compared with other wall times (backup and snapshot names carry them): clock_wall_ms. */
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

/* Milliseconds since the epoch (CLOCK_REALTIME: steps with the wall clock). */
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
