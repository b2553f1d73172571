/* testutil.c - helpers shared by the test programs; see testutil.h. */
#include "testutil.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
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

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int test_rm_tree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int test_channel_open(const char *who, const char *endpoint, const struct tls_files *files,
                      struct tls_ctx **tls, struct grpc_channel **ch)
{
    char err[512];
    const char *eps[] = {endpoint};

    *ch = NULL;
    if (!(*tls = tls_client_new(files, err, sizeof err))) {
        fprintf(stderr, "%s: tls: %s\n", who, err);
        return -1;
    }
    struct grpc_channel_config cfg = {.endpoints = eps, .n_endpoints = 1, .tls = *tls};
    if (!(*ch = grpc_channel_new(&cfg, err, sizeof err))) {
        fprintf(stderr, "%s: channel: %s\n", who, err);
        return -1;
    }
    return 0;
}
