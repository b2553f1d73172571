/* test_aws_creds.c - AWS credential resolution: the INI dialect (accepted and refused files),
 * the order env > credentials file > config file for keys, region and endpoint, expiry, the
 * cache re-reading a file replaced in place or by a Secret-style symlink swap, and the same
 * files resolved by botocore (Debian's python3-botocore, /usr/bin/python3) giving the same keys,
 * token and region. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws_creds.h"
#include "testutil.h"

static char dir[256];
static char cred_path[300], conf_path[300];

static const char *const aws_env[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
};

static void write_file(const char *path, const char *content)
{
    FILE *f;

    if (content == NULL) {
        unlink(path);
        return;
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_aws_creds.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(cred_path, sizeof cred_path, "%s/credentials", dir);
    snprintf(conf_path, sizeof conf_path, "%s/config", dir);
    for (size_t i = 0; i < sizeof aws_env / sizeof aws_env[0]; i++)
        unsetenv(aws_env[i]);
    setenv("HOME", dir, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
    setenv("AWS_CONFIG_FILE", conf_path, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_tree(dir);
}

/* ---- INI dialect -------------------------------------------------------------------------- */

struct collect {
    char out[2048];
    size_t used;
};

static int collect_cb(void *ctx, const char *section, const char *key, const char *subkey,
                      const char *value)
{
    struct collect *c = ctx;
    int w = snprintf(c->out + c->used, sizeof c->out - c->used, "%s|%s%s%s=%s;", section, key,
                     subkey != NULL ? "." : "", subkey != NULL ? subkey : "", value);
    if (w > 0 && (size_t)w < sizeof c->out - c->used)
        c->used += (size_t)w;
    return 0;
}

struct ini_row {
    const char *in;
    int rc;
    const char *want; /* the callbacks, or a part of the error */
};

static const struct ini_row ini_rows[] = {
    {"[default]\naws_access_key_id = AK\n", 0, "default|aws_access_key_id=AK;"},
    {"[a]\nk=v\n[b]\nk : w \n", 0, "a|k=v;b|k=w;"},
    {"# c\n; c\n\n[x]\n  # indented comment\nK = V = W\r\n", 0, "x|k=V = W;"},
    {"[p]\ns3 =\n  endpoint_url = http://h:1\n  addressing_style=path\nregion=r\n", 0,
     "p|s3.endpoint_url=http://h:1;p|s3.addressing_style=path;p|region=r;"},
    {"[p]\nk = a\n  b\n", 0, "p|k=a\nb;"},
    {"[p]\nk =\n", 0, "p|k=;"},
    {"[profile  \"x y\"]\nk=v", 0, "profile  \"x y\"|k=v;"},
    {"", 0, ""},
    {"k=v\n", -22, "line 1: key outside any [section]"},
    {"[a]\n[a]\n", -22, "line 2: section [a] given twice"},
    {"[a]\nk=1\nK=2\n", -22, "line 3: key \"k\" given twice"},
    {"[a]\njust words\n", -22, "line 2: not \"key = value\""},
    {"[a]\n= v\n", -22, "empty key"},
    {"[a\n", -22, "malformed section header"},
    {"[]\n", -22, "malformed section header"},
    {"[a]\ns3 =\n  no equals here\n", -22, "nested value of \"s3\" lacks '='"},
    {"[a]\ns3 =\n  = v\n", -22, "nested key of \"s3\" empty"},
};

static void test_ini(void **state)
{
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof ini_rows / sizeof ini_rows[0]; i++) {
        const struct ini_row *r = &ini_rows[i];
        struct collect c = {{0}, 0};
        int rc = aws_ini_parse(r->in, strlen(r->in), collect_cb, &c, err, sizeof err);
        if (rc != r->rc)
            fail_msg("row %zu: rc %d want %d (%s)", i, rc, r->rc, err);
        if (rc == 0 && strcmp(c.out, r->want) != 0)
            fail_msg("row %zu: got \"%s\" want \"%s\"", i, c.out, r->want);
        if (rc != 0 && strstr(err, r->want) == NULL)
            fail_msg("row %zu: error \"%s\" lacks \"%s\"", i, err, r->want);
    }
}

static void test_ini_bounds(void **state)
{
    char *big = malloc(AWS_CREDS_MAX_FILE + 2), err[256];
    struct collect c = {{0}, 0};

    (void)state;
    memset(big, 'x', AWS_CREDS_MAX_FILE + 1);
    assert_int_equal(aws_ini_parse(big, AWS_CREDS_MAX_FILE + 1, collect_cb, &c, err, sizeof err),
                     -EFBIG);
    memcpy(big, "[a]\nk=", 6);
    assert_int_equal(aws_ini_parse(big, AWS_CREDS_MAX_LINE + 10, collect_cb, &c, err, sizeof err),
                     -22);
    assert_non_null(strstr(err, "line 2: longer than"));
    assert_int_equal(aws_ini_parse("[a]\nk=\0v", 8, collect_cb, &c, err, sizeof err), -22);
    free(big);
}

/* ---- resolution --------------------------------------------------------------------------- */

struct env_kv {
    const char *k, *v;
};

struct res_row {
    const char *name;
    const char *cred, *conf;
    struct env_kv env[6];
    int rc;
    const char *ak, *sk, *token, *region, *endpoint, *source; /* or a part of err when rc != 0 */
    int64_t expires;
    bool botocore; /* compare with botocore too */
};

#define CRED_DEFAULT "[default]\naws_access_key_id = FILEAK\naws_secret_access_key = FILESK\n"
#define CONF_DEFAULT "[default]\nregion = eu-west-1\n"

static const struct res_row res_rows[] = {
    {"env_only",
     NULL,
     NULL,
     {{"AWS_ACCESS_KEY_ID", "ENVAK"}, {"AWS_SECRET_ACCESS_KEY", "ENVSK"}},
     0,
     "ENVAK",
     "ENVSK",
     "",
     "",
     "",
     "environment",
     0,
     true},
    {"env_with_token_and_region",
     NULL,
     CONF_DEFAULT,
     {{"AWS_ACCESS_KEY_ID", "ENVAK"},
      {"AWS_SECRET_ACCESS_KEY", "ENVSK"},
      {"AWS_SESSION_TOKEN", "TOK"},
      {"AWS_DEFAULT_REGION", "us-east-2"}},
     0,
     "ENVAK",
     "ENVSK",
     "TOK",
     "us-east-2",
     "",
     "environment",
     0,
     true},
    {"env_beats_file_even_with_profile",
     CRED_DEFAULT "[p]\naws_access_key_id=P\naws_secret_access_key=PS\n",
     NULL,
     {{"AWS_ACCESS_KEY_ID", "ENVAK"}, {"AWS_SECRET_ACCESS_KEY", "ENVSK"}, {"AWS_PROFILE", "p"}},
     0,
     "ENVAK",
     "ENVSK",
     "",
     "",
     "",
     "environment",
     0,
     true},
    {"half_env_refused",
     CRED_DEFAULT,
     NULL,
     {{"AWS_ACCESS_KEY_ID", "ENVAK"}},
     -22,
     "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     true},
    {"credentials_file_default",
     CRED_DEFAULT,
     CONF_DEFAULT,
     {{NULL, NULL}},
     0,
     "FILEAK",
     "FILESK",
     "",
     "eu-west-1",
     "",
     "shared credentials file",
     0,
     true},
    {"credentials_file_profile_with_token",
     CRED_DEFAULT "[pod]\naws_access_key_id=PODAK\naws_secret_access_key=PODSK\n"
                  "aws_session_token=PODTOK\nx_security_token_expires=2030-01-01T00:00:00Z\n",
     "[profile pod]\nregion=ap-south-1\n[default]\nregion=eu-west-1\n",
     {{"AWS_PROFILE", "pod"}},
     0,
     "PODAK",
     "PODSK",
     "PODTOK",
     "ap-south-1",
     "",
     "shared credentials file",
     1893456000,
     true},
    {"default_profile_over_profile",
     CRED_DEFAULT "[a]\naws_access_key_id=A\naws_secret_access_key=AS\n"
                  "[b]\naws_access_key_id=B\naws_secret_access_key=BS\n",
     NULL,
     {{"AWS_PROFILE", "a"}, {"AWS_DEFAULT_PROFILE", "b"}},
     0,
     "B",
     "BS",
     "",
     "",
     "",
     "shared credentials file",
     0,
     true},
    {"security_token_legacy_key",
     "[default]\naws_access_key_id=A\naws_secret_access_key=S\n"
     "aws_security_token=LEGACY\n",
     NULL,
     {{NULL, NULL}},
     0,
     "A",
     "S",
     "LEGACY",
     "",
     "",
     "shared credentials file",
     0,
     true},
    {"config_file_keys",
     NULL,
     "[profile c]\naws_access_key_id=CAK\naws_secret_access_key=CSK\nregion=sa-east-1\n",
     {{"AWS_PROFILE", "c"}},
     0,
     "CAK",
     "CSK",
     "",
     "sa-east-1",
     "",
     "config file",
     0,
     true},
    {"credentials_file_wins_over_config",
     "[c]\naws_access_key_id=F\naws_secret_access_key=FS\n",
     "[profile c]\naws_access_key_id=CAK\naws_secret_access_key=CSK\n",
     {{"AWS_PROFILE", "c"}},
     0,
     "F",
     "FS",
     "",
     "",
     "",
     "shared credentials file",
     0,
     true},
    {"config_profile_section_not_plain_name",
     NULL,
     "[c]\naws_access_key_id=CAK\naws_secret_access_key=CSK\n",
     {{"AWS_PROFILE", "c"}},
     -2,
     "profile \"c\" not found",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     true},
    {"profile_default_section_in_config",
     NULL,
     "[profile default]\naws_access_key_id=D\naws_secret_access_key=DS\n",
     {{NULL, NULL}},
     0,
     "D",
     "DS",
     "",
     "",
     "",
     "config file",
     0,
     true},
    {"missing_profile",
     CRED_DEFAULT,
     CONF_DEFAULT,
     {{"AWS_PROFILE", "nope"}},
     -2,
     "profile \"nope\" not found",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     true},
    {"nothing_at_all",
     NULL,
     NULL,
     {{NULL, NULL}},
     -2,
     "no AWS credentials",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     true},
    {"malformed_credentials_file",
     "[default\naws_access_key_id=A\n",
     NULL,
     {{NULL, NULL}},
     -22,
     "credentials: line 1: malformed section header",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     true},
    {"duplicate_key_refused",
     "[default]\naws_access_key_id=A\naws_access_key_id=B\n",
     NULL,
     {{NULL, NULL}},
     -22,
     "given twice",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     true},
    {"aws_region_beats_default_region",
     CRED_DEFAULT,
     CONF_DEFAULT,
     {{"AWS_REGION", "r1"}, {"AWS_DEFAULT_REGION", "r2"}},
     0,
     "FILEAK",
     "FILESK",
     "",
     "r1",
     "",
     "shared credentials file",
     0,
     false},
    {"endpoint_env_service_first",
     CRED_DEFAULT,
     "[default]\nendpoint_url=http://prof\n",
     {{"AWS_ENDPOINT_URL", "http://all"}, {"AWS_ENDPOINT_URL_S3", "http://s3only"}},
     0,
     "FILEAK",
     "FILESK",
     "",
     "",
     "http://s3only",
     "shared credentials file",
     0,
     false},
    {"endpoint_env_global",
     CRED_DEFAULT,
     "[default]\nendpoint_url=http://prof\n",
     {{"AWS_ENDPOINT_URL", "http://all"}},
     0,
     "FILEAK",
     "FILESK",
     "",
     "",
     "http://all",
     "shared credentials file",
     0,
     false},
    {"endpoint_services_section",
     CRED_DEFAULT,
     "[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9000\n"
     "[default]\nservices = local\nendpoint_url = http://prof\n",
     {{NULL, NULL}},
     0,
     "FILEAK",
     "FILESK",
     "",
     "",
     "http://127.0.0.1:9000",
     "shared credentials file",
     0,
     false},
    {"endpoint_profile",
     CRED_DEFAULT,
     "[default]\nendpoint_url=http://prof\n",
     {{NULL, NULL}},
     0,
     "FILEAK",
     "FILESK",
     "",
     "",
     "http://prof",
     "shared credentials file",
     0,
     false},
    {"endpoint_ignored_on_request",
     CRED_DEFAULT,
     "[default]\nendpoint_url=http://prof\n",
     {{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}, {"AWS_ENDPOINT_URL", "http://all"}},
     0,
     "FILEAK",
     "FILESK",
     "",
     "",
     "",
     "shared credentials file",
     0,
     false},
    {"env_expiration",
     NULL,
     NULL,
     {{"AWS_ACCESS_KEY_ID", "A"},
      {"AWS_SECRET_ACCESS_KEY", "S"},
      {"AWS_CREDENTIAL_EXPIRATION", "2030-01-01T02:00:00+02:00"}},
     0,
     "A",
     "S",
     "",
     "",
     "",
     "environment",
     1893456000,
     false},
    {"bad_expiry_refused",
     "[default]\naws_access_key_id=A\naws_secret_access_key=S\n"
     "expiration=tomorrow\n",
     NULL,
     {{NULL, NULL}},
     -22,
     "expiry is not an ISO 8601 time",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     false},
    {"web_identity_not_supported",
     NULL,
     NULL,
     {{"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"}, {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}},
     -95,
     "web identity",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     false},
    {"assume_role_profile_not_supported",
     CRED_DEFAULT,
     "[profile r]\nrole_arn=arn:aws:iam::1:role/r\nsource_profile=default\n",
     {{"AWS_PROFILE", "r"}},
     -95,
     "uses role_arn",
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     0,
     false},
};

static void set_row_env(const struct res_row *r)
{
    for (size_t i = 0; i < sizeof aws_env / sizeof aws_env[0]; i++)
        unsetenv(aws_env[i]);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
    setenv("AWS_CONFIG_FILE", conf_path, 1);
    for (size_t i = 0; i < sizeof r->env / sizeof r->env[0] && r->env[i].k != NULL; i++)
        setenv(r->env[i].k, r->env[i].v, 1);
    write_file(cred_path, r->cred);
    write_file(conf_path, r->conf);
}

static void test_resolve(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof res_rows / sizeof res_rows[0]; i++) {
        const struct res_row *r = &res_rows[i];
        struct aws_creds c;
        char err[512] = "";
        int rc;

        set_row_env(r);
        rc = aws_creds_resolve("s3", &c, err, sizeof err);
        if (rc != r->rc)
            fail_msg("%s: rc %d want %d (%s)", r->name, rc, r->rc, err);
        if (rc != 0) {
            if (strstr(err, r->ak) == NULL)
                fail_msg("%s: error \"%s\" lacks \"%s\"", r->name, err, r->ak);
            /* no secret in an error line */
            assert_null(strstr(err, "FILESK"));
            continue;
        }
        if (strcmp(c.access_key_id, r->ak) != 0 || strcmp(c.secret_access_key, r->sk) != 0 ||
            strcmp(c.session_token, r->token) != 0 || strcmp(c.region, r->region) != 0 ||
            strcmp(c.endpoint_url, r->endpoint) != 0 || strcmp(c.source, r->source) != 0 ||
            c.expires != r->expires)
            fail_msg("%s: got %s/%s/%s region %s endpoint %s from %s expires %lld", r->name,
                     c.access_key_id, c.secret_access_key, c.session_token, c.region,
                     c.endpoint_url, c.source, (long long)c.expires);
        aws_creds_clear(&c);
    }
}

/* botocore over the same cases in one process (its import takes a second): each case is a
 * directory with credentials, config and env (KEY=VALUE lines); prints per case
 * "ak sk token region" or "ERROR Class" */
static const char botocore_py[] =
    "import os, sys, botocore.session\n"
    "for d in sys.argv[1:]:\n"
    "    for k in list(os.environ):\n"
    "        if k.startswith('AWS_'): del os.environ[k]\n"
    "    os.environ['AWS_EC2_METADATA_DISABLED'] = 'true'\n"
    "    os.environ['AWS_SHARED_CREDENTIALS_FILE'] = d + '/credentials'\n"
    "    os.environ['AWS_CONFIG_FILE'] = d + '/config'\n"
    "    for l in open(d + '/env').read().splitlines():\n"
    "        k, v = l.split('=', 1); os.environ[k] = v\n"
    "    try:\n"
    "        s = botocore.session.Session()\n"
    "        c = s.get_credentials()\n"
    "        if c is None:\n"
    "            print('ERROR NoCredentials')\n"
    "        else:\n"
    "            f = c.get_frozen_credentials()\n"
    "            print(f.access_key, f.secret_key, f.token or '-',\n"
    "                  s.get_config_variable('region') or '-')\n"
    "    except Exception as e:\n"
    "        print('ERROR', type(e).__name__)\n";

static void test_botocore_agrees(void **state)
{
    static char want[sizeof res_rows / sizeof res_rows[0]][8192];
    static char cmd[16384];
    char script[300], path[400];
    size_t used, n = 0;
    FILE *f;

    (void)state;
    if (system("/usr/bin/python3 -c 'import botocore' 2>/dev/null") != 0)
        skip(); /* python3-botocore (Debian) not installed */
    snprintf(script, sizeof script, "%s/resolve.py", dir);
    write_file(script, botocore_py);
    used = (size_t)snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s'", script);
    for (size_t i = 0; i < sizeof res_rows / sizeof res_rows[0]; i++) {
        const struct res_row *r = &res_rows[i];
        struct aws_creds c;
        char err[512], cdir[300];
        int rc;

        if (!r->botocore)
            continue;
        set_row_env(r);
        rc = aws_creds_resolve("s3", &c, err, sizeof err);
        if (rc != 0)
            snprintf(want[n], sizeof want[n], "ERROR");
        else
            snprintf(want[n], sizeof want[n], "%s %s %s %s", c.access_key_id, c.secret_access_key,
                     c.session_token[0] ? c.session_token : "-", c.region[0] ? c.region : "-");
        aws_creds_clear(&c);
        /* the case, as files botocore reads */
        snprintf(cdir, sizeof cdir, "%s/case%zu", dir, n);
        assert_int_equal(mkdir(cdir, 0700), 0);
        snprintf(path, sizeof path, "%s/credentials", cdir);
        write_file(path, r->cred);
        snprintf(path, sizeof path, "%s/config", cdir);
        write_file(path, r->conf);
        snprintf(path, sizeof path, "%s/env", cdir);
        f = fopen(path, "w");
        assert_non_null(f);
        for (size_t e = 0; e < sizeof r->env / sizeof r->env[0] && r->env[e].k != NULL; e++)
            fprintf(f, "%s=%s\n", r->env[e].k, r->env[e].v);
        fclose(f);
        used += (size_t)snprintf(cmd + used, sizeof cmd - used, " '%s'", cdir);
        assert_true(used < sizeof cmd);
        n++;
    }
    f = popen(cmd, "r");
    assert_non_null(f);
    for (size_t i = 0, k = 0; i < sizeof res_rows / sizeof res_rows[0]; i++) {
        char line[8192];
        if (!res_rows[i].botocore)
            continue;
        if (fgets(line, sizeof line, f) == NULL)
            fail_msg("%s: no answer from botocore", res_rows[i].name);
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(want[k], "ERROR") == 0 ? strncmp(line, "ERROR ", 6) != 0
                                          : strcmp(line, want[k]) != 0)
            fail_msg("%s: ours \"%s\", botocore \"%s\"", res_rows[i].name, want[k], line);
        k++;
    }
    assert_int_equal(pclose(f), 0);
    assert_true(n >= 15);
}

/* ---- cache -------------------------------------------------------------------------------- */

static void test_cache_rereads(void **state)
{
    struct aws_creds_cache cache = {0};
    struct aws_creds c;
    char err[512], data_a[300], data_b[300], link_tmp[400];
    const struct res_row none = {.name = "cache"};
    int64_t now = 1800000000;

    (void)state;
    set_row_env(&none);
    /* a Secret volume: credentials -> ..data/credentials, ..data -> a timestamped dir */
    snprintf(data_a, sizeof data_a, "%s/..2026_a", dir);
    snprintf(data_b, sizeof data_b, "%s/..2026_b", dir);
    assert_int_equal(mkdir(data_a, 0700), 0);
    assert_int_equal(mkdir(data_b, 0700), 0);
    snprintf(link_tmp, sizeof link_tmp, "%s/credentials", data_a);
    write_file(link_tmp, "[default]\naws_access_key_id=AK1\naws_secret_access_key=SK1\n");
    snprintf(link_tmp, sizeof link_tmp, "%s/credentials", data_b);
    write_file(link_tmp, "[default]\naws_access_key_id=AK2\naws_secret_access_key=SK2\n");
    snprintf(link_tmp, sizeof link_tmp, "%s/..data", dir);
    assert_int_equal(symlink("..2026_a", link_tmp), 0);
    unlink(cred_path);
    assert_int_equal(symlink("..data/credentials", cred_path), 0);

    assert_int_equal(aws_creds_get(&cache, "s3", now, &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "AK1");
    assert_int_equal(aws_creds_get(&cache, "s3", now, &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "AK1");
    /* the kubelet's swap: a new ..data link renamed over the old one */
    {
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
        assert_int_equal(symlink("..2026_b", tmp), 0);
        assert_int_equal(rename(tmp, link_tmp), 0);
    }
    assert_int_equal(aws_creds_get(&cache, "s3", now, &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "AK2");

    /* a file rewritten in place with the same size */
    unlink(cred_path);
    write_file(cred_path, "[default]\naws_access_key_id=AK3\naws_secret_access_key=SK3\n");
    assert_int_equal(aws_creds_get(&cache, "s3", now, &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "AK3");
    {
        FILE *f = fopen(cred_path, "r+");
        assert_non_null(f);
        fputs("[default]\naws_access_key_id=AK4\naws_secret_access_key=SK4\n", f);
        fclose(f);
        /* same size, and maybe the same mtime second: ctime/mtime in ns still differ */
    }
    assert_int_equal(aws_creds_get(&cache, "s3", now, &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "AK4");

    /* expiry: near expiry the file is read again; still expired is an error */
    write_file(cred_path, "[default]\naws_access_key_id=AK5\naws_secret_access_key=SK5\n"
                          "aws_session_token=T5\nexpiration=2027-01-15T08:00:00Z\n");
    assert_int_equal(aws_creds_get(&cache, "s3", 1800000000 - 400000000, &c, err, sizeof err), 0);
    assert_string_equal(c.session_token, "T5");
    assert_int_equal(aws_creds_get(&cache, "s3", 1800000000, &c, err, sizeof err), -EKEYEXPIRED);
    assert_non_null(strstr(err, "expired at 2027-01-15T08:00:00Z"));
    /* the failed refresh left the cache as it was; a renewed file is picked up */
    assert_string_equal(cache.creds.session_token, "T5");
    write_file(cred_path, "[default]\naws_access_key_id=AK6\naws_secret_access_key=SK6\n"
                          "aws_session_token=T6\nexpiration=2027-03-15T08:00:00+00:00\n");
    assert_int_equal(aws_creds_get(&cache, "s3", 1800000000 - 400000000, &c, err, sizeof err), 0);
    assert_string_equal(c.session_token, "T6");
    aws_creds_cache_clear(&cache);
    aws_creds_clear(&c);
}

static void test_parse_time(void **state)
{
    int64_t t;

    (void)state;
    assert_int_equal(aws_creds_parse_time("2030-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 1893456000);
    assert_int_equal(aws_creds_parse_time("2030-01-01T00:00:00.123456Z", &t), 0);
    assert_int_equal(t, 1893456000);
    assert_int_equal(aws_creds_parse_time("2029-12-31 19:00:00-05:00", &t), 0);
    assert_int_equal(t, 1893456000);
    assert_int_equal(aws_creds_parse_time("2030-01-01T05:30:00+0530", &t), 0);
    assert_int_equal(t, 1893456000);
    assert_int_equal(aws_creds_parse_time("2030-01-01T00:00:00", &t), -22);
    assert_int_equal(aws_creds_parse_time("2030-13-01T00:00:00Z", &t), -22);
    assert_int_equal(aws_creds_parse_time("2030-01-01T00:00:00Zjunk", &t), -22);
    assert_int_equal(aws_creds_parse_time("2030-01-01T00:00:00.Z", &t), -22);
    assert_int_equal(aws_creds_parse_time("", &t), -22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini),
        cmocka_unit_test(test_ini_bounds),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_botocore_agrees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_rereads, setup, teardown),
    };
    return cmocka_run_group_tests_name("aws_creds", tests, NULL, NULL);
}
