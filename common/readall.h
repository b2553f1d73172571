/* readall.h - reading a small file through to its end into a caller's buffer, with a cap, so that
 * "longer than the bound" is told apart from "exactly the bound". Opening, checking the file's
 * type and what the bytes mean are the callers'. */
#ifndef ER_READALL_H
#define ER_READALL_H

#include <stddef.h>

/* Reads fd from its offset until end of file or cap bytes (read retried on EINTR); the count in
 * *len. Returns 0, -EFBIG once cap bytes were read (pass a bound + 1 as cap: -EFBIG then means
 * "longer than the bound"), or read's negative errno (*len then counts what was read). */
int readall(int fd, void *buf, size_t cap, size_t *len);

#endif
