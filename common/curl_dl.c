/* curl_dl.c - the one dlopen of libcurl and the stores' handle pools (see curl_dl.h). What to
 * fetch, how to sign and how to retry is the stores' and init/restore.c's. */
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct curl_dl dl_api;
static char dl_error[256];
static int dl_ok;
static pthread_once_t dl_once = PTHREAD_ONCE_INIT;

static void dl_load(void)
{
    static const char *const names[] = {
        "curl_global_init",  "curl_easy_init",     "curl_easy_setopt", "curl_easy_perform",
        "curl_easy_getinfo", "curl_easy_strerror", "curl_easy_reset",  "curl_easy_cleanup",
        "curl_slist_append", "curl_slist_free_all"};
    void *syms[sizeof(names) / sizeof(names[0])];
    void *lib = dlopen(CURL_DL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    const char *why;
    CURLcode (*global_init)(long);

    if (!lib) {
        why = dlerror();
        snprintf(dl_error, sizeof(dl_error), "cannot load %s: %s", CURL_DL_LIBRARY,
                 why ? why : "unknown error");
        return;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        syms[i] = dlsym(lib, names[i]);
        if (!syms[i]) {
            why = dlerror();
            snprintf(dl_error, sizeof(dl_error), "%s has no %s: %s", CURL_DL_LIBRARY, names[i],
                     why ? why : "unknown error");
            dlclose(lib);
            return;
        }
    }
    /* POSIX guarantees that dlsym's void * converts to a function pointer */
    global_init = (CURLcode(*)(long))syms[0];
    dl_api.easy_init = (CURL * (*)(void)) syms[1];
    dl_api.easy_setopt = (CURLcode(*)(CURL *, CURLoption, ...))syms[2];
    dl_api.easy_perform = (CURLcode(*)(CURL *))syms[3];
    dl_api.easy_getinfo = (CURLcode(*)(CURL *, CURLINFO, ...))syms[4];
    dl_api.easy_strerror = (const char *(*)(CURLcode))syms[5];
    dl_api.easy_reset = (void (*)(CURL *))syms[6];
    dl_api.easy_cleanup = (void (*)(CURL *))syms[7];
    dl_api.slist_append = (struct curl_slist * (*)(struct curl_slist *, const char *)) syms[8];
    dl_api.slist_free_all = (void (*)(struct curl_slist *))syms[9];
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(dl_error, sizeof(dl_error), "curl_global_init failed");
        return; /* the library stays loaded: unloading it after a failed init is not safe */
    }
    dl_ok = 1;
}

const struct curl_dl *curl_dl_get(char *err, size_t err_len)
{
    (void)pthread_once(&dl_once, dl_load);
    if (dl_ok)
        return &dl_api;
    if (err && err_len)
        snprintf(err, err_len, "%s", dl_error);
    return NULL;
}

void curl_pool_init(struct curl_pool *p, const struct curl_dl *curl)
{
    p->curl = curl;
    p->n_idle = 0;
    pthread_mutex_init(&p->mu, NULL);
}

CURL *curl_pool_take(struct curl_pool *p)
{
    CURL *h = NULL;

    pthread_mutex_lock(&p->mu);
    if (p->n_idle)
        h = p->idle[--p->n_idle];
    pthread_mutex_unlock(&p->mu);
    return h ? h : p->curl->easy_init();
}

void curl_pool_give(struct curl_pool *p, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->n_idle < CURL_POOL_IDLE) {
        p->idle[p->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (h)
        p->curl->easy_cleanup(h);
}

void curl_pool_destroy(struct curl_pool *p)
{
    if (!p->curl)
        return;
    while (p->n_idle)
        p->curl->easy_cleanup(p->idle[--p->n_idle]);
    pthread_mutex_destroy(&p->mu);
    p->curl = NULL;
}

void curl_request_setup(const struct curl_dl *cu, CURL *h, const struct curl_request *r)
{
    cu->easy_reset(h);
    cu->easy_setopt(h, CURLOPT_URL, r->url);
    cu->easy_setopt(h, CURLOPT_HTTPHEADER, r->headers);
    cu->easy_setopt(h, CURLOPT_HEADERFUNCTION, r->on_header);
    cu->easy_setopt(h, CURLOPT_HEADERDATA, r->arg);
    cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, r->on_body);
    cu->easy_setopt(h, CURLOPT_WRITEDATA, r->arg);
    cu->easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
    cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)STORE_CONNECT_TIMEOUT_MS);
    cu->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    cu->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, r->low_speed_s);
    cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (r->cabundle[0])
        cu->easy_setopt(h, CURLOPT_CAINFO, r->cabundle);
    if (r->on_read) {
        cu->easy_setopt(h, CURLOPT_UPLOAD, 1L);
        cu->easy_setopt(h, CURLOPT_READFUNCTION, r->on_read);
        cu->easy_setopt(h, CURLOPT_READDATA, r->arg);
        cu->easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    }
    if (strcmp(r->method, "HEAD") == 0)
        cu->easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(r->method, "GET") != 0)
        cu->easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
}
