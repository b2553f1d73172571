/* testutil.h - helpers shared by the test programs (linked into every test binary). */
#ifndef ER_TESTUTIL_H
#define ER_TESTUTIL_H

/* Factor (1..100) for generous test time limits, from TEST_TIME_SCALE: tests/run.sh raises it
 * under valgrind and ASan, where everything runs many times slower. Limits scaled by it are
 * upper bounds against hangs, never the thing a test measures. */
int test_time_scale(void);

/* Removes dir and everything below it (no symlinks followed). Returns 0 or -1 with errno. */
int test_rm_tree(const char *dir);

#endif
