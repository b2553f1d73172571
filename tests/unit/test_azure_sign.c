/* test_azure_sign.c - the Azure Shared Key signer: for a table of Blob requests (Put Block, Put
 * Block List, ranged Get, List with markers, Delete, emulator and public-cloud URLs, escaped
 * names) our Authorization header equals the one Microsoft's azure-storage-blob (Debian's
 * python3-azure-storage, /usr/bin/python3) computes for the same request; plus the pieces
 * (Content-Length 0, key decoding, x-ms-date, block IDs, env settings, URL redaction). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "array.h"
#include "azure_sign.h"

/* Azurite's well-known development account and key (public, in Microsoft's docs) */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

struct sign_row {
    const char *name;
    const char *verb;
    const char *base; /* scheme://host[:port] */
    const char *account;
    const char *path; /* as sent */
    const char *query;
    struct azure_header h[8];
};

#define DATE                                                                                       \
    {                                                                                              \
        "x-ms-date", "Thu, 03 Dec 2026 22:10:00 GMT"                                               \
    }
#define VERSION                                                                                    \
    {                                                                                              \
        "x-ms-version", AZURE_API_VERSION                                                          \
    }
#define AZURITE "http://127.0.0.1:10000"

static const struct sign_row rows[] = {
    {"put_block",
     "PUT",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/backups/p/0123/x.db.zst",
     "comp=block&blockid=YmxvY2stMDAwMDAwMDAw",
     {{"Content-Length", "4194304"}, {"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="}, DATE, VERSION}},
    {"put_block_list",
     "PUT",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/backups/p/x.db",
     "comp=blocklist",
     {{"Content-Length", "120"},
      {"Content-Type", "application/xml"},
      DATE,
      VERSION,
      {"x-ms-blob-content-type", "application/octet-stream"}}},
    {"put_blob_small",
     "PUT",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/c/m.manifest.json",
     NULL,
     {{"Content-Length", "312"},
      {"Content-Type", "application/json"},
      DATE,
      VERSION,
      {"x-ms-blob-type", "BlockBlob"}}},
    {"get_range",
     "GET",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/c/x.db",
     NULL,
     {DATE, VERSION, {"x-ms-range", "bytes=0-1048575"}}},
    {"list_with_marker",
     "GET",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/c",
     "restype=container&comp=list&prefix=p%2F0123%2F&marker=2%21104%21MDAwMDQ2&maxresults=5000",
     {DATE, VERSION}},
    {"delete_zero_length",
     "DELETE",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/c/x.db",
     NULL,
     {{"Content-Length", "0"}, DATE, VERSION}},
    {"head", "HEAD", AZURITE, DEV_ACCOUNT, "/devstoreaccount1/c/x.db", NULL, {DATE, VERSION}},
    {"public_cloud",
     "PUT",
     "https://prodacct.blob.core.windows.net",
     "prodacct",
     "/etcd/cluster%20a/20261203T221000Z-rev42.db",
     "comp=block&blockid=YmxvY2stMDAwMDAwMDEy",
     {{"Content-Length", "16777216"}, DATE, VERSION, {"x-ms-client-request-id", "abc-1"}}},
    {"meta_header_order",
     "PUT",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/c/b",
     NULL,
     {{"Content-Length", "5"},
      DATE,
      VERSION,
      {"x-ms-meta-a1", "one"},
      {"x-ms-meta-a-b", "two"},
      {"x-ms-meta-A", "three"},
      {"x-ms-blob-type", "BlockBlob"}}},
    {"escaped_plus_in_query",
     "GET",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/c",
     "restype=container&comp=list&prefix=a%2Bb+c",
     {DATE, VERSION}},
    {"if_match_and_encoding",
     "PUT",
     AZURITE,
     DEV_ACCOUNT,
     "/devstoreaccount1/c/b",
     NULL,
     {{"Content-Length", "7"},
      {"Content-Encoding", "zstd"},
      {"If-Match", "\"0x8D\""},
      {"If-None-Match", "*"},
      {"Content-Language", "en"},
      DATE,
      VERSION}},
};

#define N_ROWS (ARRAY_SIZE(rows))

static void our_auth(const struct sign_row *r, char *auth, size_t len)
{
    uint8_t key[64];
    int kl = azure_key_decode(DEV_KEY, key, sizeof key);
    char sts[AZURE_MAX_STRING_TO_SIGN];
    size_t nh = 0;

    assert_int_equal(kl, 64);
    while (nh < 8 && r->h[nh].name != NULL)
        nh++;
    assert_int_equal(
        azure_string_to_sign(r->verb, r->account, r->path, r->query, r->h, nh, sts, sizeof sts), 0);
    assert_int_equal(azure_sign(r->account, key, (size_t)kl, sts, auth, len), 0);
}

/* the SDK's SharedKeyCredentialPolicy on the same requests; one line per request */
static const char sdk_py[] =
    "import json, sys\n"
    "from azure.core.pipeline import PipelineRequest, PipelineContext\n"
    "from azure.core.pipeline.transport import HttpRequest\n"
    "from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy\n"
    "for line in open(sys.argv[1]):\n"
    "    c = json.loads(line)\n"
    "    req = HttpRequest(c['verb'], c['url'], headers=dict(c['headers']))\n"
    "    SharedKeyCredentialPolicy(c['account'], c['key']).on_request(\n"
    "        PipelineRequest(req, PipelineContext(None)))\n"
    "    print(req.headers['Authorization'])\n";

static void test_sdk_agrees(void **state)
{
    char dir[] = "/tmp/test_azure_sign.XXXXXX", script[64], cases[64], cmd[200], line[256];
    char auth[256];
    FILE *f, *p;

    (void)state;
    if (system("/usr/bin/python3 -c 'import azure.storage.blob' 2>/dev/null") != 0)
        skip(); /* python3-azure-storage (Debian) not installed */
    assert_non_null(mkdtemp(dir));
    snprintf(script, sizeof script, "%s/sign.py", dir);
    snprintf(cases, sizeof cases, "%s/cases.jsonl", dir);
    f = fopen(script, "w");
    assert_non_null(f);
    fputs(sdk_py, f);
    fclose(f);
    f = fopen(cases, "w");
    assert_non_null(f);
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct sign_row *r = &rows[i];
        fprintf(f,
                "{\"verb\":\"%s\",\"url\":\"%s%s%s%s\",\"account\":\"%s\",\"key\":\"%s\","
                "\"headers\":[",
                r->verb, r->base, r->path, r->query != NULL ? "?" : "",
                r->query != NULL ? r->query : "", r->account, DEV_KEY);
        for (size_t k = 0; k < 8 && r->h[k].name != NULL; k++) {
            fprintf(f, "%s[\"%s\",\"", k > 0 ? "," : "", r->h[k].name);
            for (const char *c = r->h[k].value; *c != '\0'; c++)
                fprintf(f, *c == '"' ? "\\\"" : "%c", *c);
            fputs("\"]", f);
        }
        fputs("]}\n", f);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, cases);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (size_t i = 0; i < N_ROWS; i++) {
        if (fgets(line, sizeof line, p) == NULL)
            fail_msg("%s: no answer from the SDK", rows[i].name);
        line[strcspn(line, "\n")] = '\0';
        our_auth(&rows[i], auth, sizeof auth);
        if (strcmp(auth, line) != 0)
            fail_msg("%s: ours \"%s\", SDK \"%s\"", rows[i].name, auth, line);
    }
    assert_int_equal(pclose(p), 0);
    unlink(script);
    unlink(cases);
    rmdir(dir);
}

static void test_string_to_sign_shape(void **state)
{
    char sts[1024];
    const struct azure_header h[] = {
        {"Content-Length", "0"}, {"x-ms-version", "v"}, {"X-MS-Date", "d"}, {"Range", "r"}};

    (void)state;
    assert_int_equal(
        azure_string_to_sign("DELETE", "acct", "/c/b", "comp=x&B=2&a=1", h, 4, sts, sizeof sts), 0);
    assert_string_equal(sts, "DELETE\n\n\n\n\n\n\n\n\n\n\nr\nx-ms-date:d\nx-ms-version:v\n"
                             "/acct/c/b\na:1\nb:2\ncomp:x");
    /* repeated names: values sorted, joined by ',' */
    assert_int_equal(azure_string_to_sign("GET", "a", "/", "k=2&k=1", NULL, 0, sts, sizeof sts), 0);
    assert_non_null(strstr(sts, "/a/\nk:1,2"));
    /* refused: malformed escape, bad x-ms name, duplicates, too small */
    assert_int_equal(azure_string_to_sign("GET", "a", "/", "k=%4", NULL, 0, sts, sizeof sts),
                     -EINVAL);
    assert_int_equal(azure_string_to_sign("GET", "a", "/", "k=%zz", NULL, 0, sts, sizeof sts),
                     -EINVAL);
    assert_int_equal(azure_string_to_sign("GET", "a", "/", NULL,
                                          (struct azure_header[]){{"x-ms-a b", "1"}}, 1, sts,
                                          sizeof sts),
                     -EINVAL);
    assert_int_equal(azure_string_to_sign("GET", "a", "/", NULL,
                                          (struct azure_header[]){{"x-ms-a", "1"}, {"X-Ms-A", "2"}},
                                          2, sts, sizeof sts),
                     -EINVAL);
    assert_int_equal(azure_string_to_sign("GET", "a", "/", NULL,
                                          (struct azure_header[]){{"Range", "1"}, {"range", "2"}},
                                          2, sts, sizeof sts),
                     -EINVAL);
    assert_int_equal(azure_string_to_sign("GET", "a", "/c", NULL, NULL, 0, sts, 10), -ENOSPC);
    assert_int_equal(azure_string_to_sign("GET", "a", "c", NULL, NULL, 0, sts, sizeof sts),
                     -EINVAL);
}

static void test_helpers(void **state)
{
    uint8_t key[64];
    char d[64], id0[29], id1[29], red[64];

    (void)state;
    assert_int_equal(azure_key_decode(DEV_KEY, key, sizeof key), 64);
    assert_int_equal(azure_key_decode("YWJj", key, sizeof key), 3);
    assert_int_equal(azure_key_decode("YWI=", key, sizeof key), 2);
    assert_int_equal(azure_key_decode("YWJ", key, sizeof key), -EINVAL);
    assert_int_equal(azure_key_decode("YW=j", key, sizeof key), -EINVAL);
    assert_int_equal(azure_key_decode("YW!j", key, sizeof key), -EINVAL);
    assert_int_equal(azure_key_decode("", key, sizeof key), -EINVAL);
    assert_int_equal(azure_key_decode(DEV_KEY, key, 10), -EINVAL);
    assert_int_equal(azure_date(1796335800, d, sizeof d), 0);
    assert_string_equal(d, "Thu, 03 Dec 2026 22:10:00 GMT");
    azure_block_id(0, id0);
    azure_block_id(4095, id1);
    assert_string_equal(id0, "YmxvY2stMDAwMDAwMDAw");
    assert_int_equal(strlen(id0), strlen(id1));
    assert_string_not_equal(id0, id1);
    assert_string_equal(
        azure_redact_url("https://a.blob.core.windows.net/c/b?sv=1&sig=SECRET", red, sizeof red),
        "https://a.blob.core.windows.net/c/b");
    assert_string_equal(azure_redact_url("http://h/x#sig", red, sizeof red), "http://h/x");
}

static void test_account_from_env(void **state)
{
    struct azure_account a;
    char err[256];

    (void)state;
    unsetenv("AZURE_STORAGE_ACCOUNT");
    unsetenv("AZURE_STORAGE_KEY");
    unsetenv("AZURE_STORAGE_SAS_TOKEN");
    unsetenv("AZURE_STORAGE_BLOB_ENDPOINT");
    assert_int_equal(azure_account_from_env("acct", &a, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"));
    setenv("AZURE_STORAGE_SAS_TOKEN", "?sv=2021-08-06&sig=abc%3D", 1);
    assert_int_equal(azure_account_from_env("acct", &a, err, sizeof err), 0);
    assert_string_equal(a.sas, "sv=2021-08-06&sig=abc%3D");
    assert_int_equal(a.key_len, 0);
    assert_string_equal(a.endpoint, "https://acct.blob.core.windows.net");
    setenv("AZURE_STORAGE_KEY", DEV_KEY, 1);
    setenv("AZURE_STORAGE_BLOB_ENDPOINT", "http://127.0.0.1:10000/devstoreaccount1/", 1);
    assert_int_equal(azure_account_from_env(DEV_ACCOUNT, &a, err, sizeof err), 0);
    assert_int_equal(a.key_len, 64);
    assert_string_equal(a.sas, "");
    assert_string_equal(a.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    setenv("AZURE_STORAGE_ACCOUNT", "other", 1);
    assert_int_equal(azure_account_from_env(DEV_ACCOUNT, &a, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "differs"));
    unsetenv("AZURE_STORAGE_ACCOUNT");
    setenv("AZURE_STORAGE_KEY", "not base64!", 1);
    assert_int_equal(azure_account_from_env(DEV_ACCOUNT, &a, err, sizeof err), -EINVAL);
    assert_null(strstr(err, "not base64!"));
    setenv("AZURE_STORAGE_KEY", DEV_KEY, 1);
    setenv("AZURE_STORAGE_BLOB_ENDPOINT", "ftp://x", 1);
    assert_int_equal(azure_account_from_env(DEV_ACCOUNT, &a, err, sizeof err), -EINVAL);
    assert_int_equal(azure_account_from_env("Bad_Name", &a, err, sizeof err), -EINVAL);
    unsetenv("AZURE_STORAGE_KEY");
    unsetenv("AZURE_STORAGE_SAS_TOKEN");
    unsetenv("AZURE_STORAGE_BLOB_ENDPOINT");
    azure_account_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_agrees),
        cmocka_unit_test(test_string_to_sign_shape),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_account_from_env),
    };
    return cmocka_run_group_tests_name("azure_sign", tests, NULL, NULL);
}
