/* eio_shim.c - LD_PRELOAD fault injector for tests/faults/eio.sh (a FUSE-less substitute for a
 * failing disk). For files whose path contains $EIO_MATCH: read/pread fail with EIO, and mmap
 * maps the file and then truncates it to 0, so touching the mapping raises SIGBUS exactly as a
 * page that cannot be read back (EIO under a mapping) or a file shrunk under the reader does.
 * Only for tests; io_uring reads bypass it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

static int fd_matches(int fd, char *path, size_t len)
{
    const char *want = getenv("EIO_MATCH");
    char link[64];
    if (!want || !*want)
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, len - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return strstr(path, want) != NULL;
}

ssize_t read(int fd, void *buf, size_t count)
{
    static ssize_t (*real)(int, void *, size_t);
    char path[4096];
    if (!real)
        real = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    if (fd_matches(fd, path, sizeof path)) {
        errno = EIO;
        return -1;
    }
    return real(fd, buf, count);
}

static ssize_t do_pread(const char *sym, int fd, void *buf, size_t count, off_t off)
{
    ssize_t (*real)(int, void *, size_t, off_t) =
        (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, sym);
    char path[4096];
    if (fd_matches(fd, path, sizeof path)) {
        errno = EIO;
        return -1;
    }
    return real(fd, buf, count, off);
}
ssize_t pread(int fd, void *buf, size_t count, off_t off)
{
    return do_pread("pread", fd, buf, count, off);
}
ssize_t pread64(int fd, void *buf, size_t count, off_t off)
{
    return do_pread("pread64", fd, buf, count, off);
}

static void *do_mmap(const char *sym, void *addr, size_t len, int prot, int flags, int fd,
                     off_t off)
{
    void *(*real)(void *, size_t, int, int, int, off_t) =
        (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, sym);
    char path[4096];
    void *p = real(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && fd >= 0 && fd_matches(fd, path, sizeof path))
        (void)truncate(path, 0);
    return p;
}
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return do_mmap("mmap", addr, len, prot, flags, fd, off);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return do_mmap("mmap64", addr, len, prot, flags, fd, off);
}
