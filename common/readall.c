/* readall.c - a small file read through to its end with a cap; see readall.h. Opening the file
 * and parsing what it holds are the callers'. */
#include "readall.h"

#include <errno.h>
#include <unistd.h>

int readall(int fd, void *buf, size_t cap, size_t *len)
{
    char *p = buf;

    *len = 0;
    while (*len < cap) {
        ssize_t r = read(fd, p + *len, cap - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return 0;
        *len += (size_t)r;
    }
    return -EFBIG;
}
