/* curl_dl.h - libcurl loaded with dlopen, once per process, on first use: the agent and
 * reset-member do not link it (its ~25 libraries would cost every start), and only a configured
 * store or --restore-from URL pays for loading it. Requests themselves are the callers'. */
#ifndef ER_CURL_DL_H
#define ER_CURL_DL_H

#include <curl/curl.h> /* types and constants only: the functions come from dlopen */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

#define CURL_DL_LIBRARY "libcurl.so.4"

struct curl_dl {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode cc);
    void (*easy_reset)(CURL *h);
    void (*easy_cleanup)(CURL *h);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

/* The loaded library (found like a linked one: the bundle's RPATH, then the system's paths),
 * with curl_global_init done; thread-safe, loaded at most once, never unloaded. Returns NULL
 * with the reason in err (library or a symbol missing, global init failed). */
const struct curl_dl *curl_dl_get(char *err, size_t err_len);

/* One store request, as every store sends it: the answer's headers and body go to the
 * callbacks (arg), a transport error's text into errbuf (CURL_ERROR_SIZE), a connection must
 * open within STORE_CONNECT_TIMEOUT_MS and a transfer that moves no byte for low_speed_s fails,
 * http(s) only, the CA bundle when cabundle is not "", and a body of body_len bytes from
 * on_read when on_read is not NULL. */
struct curl_request {
    const char *method, *url;
    struct curl_slist *headers;
    curl_write_callback on_header, on_body;
    curl_read_callback on_read;
    void *arg;
    uint64_t body_len;
    char *errbuf;
    long low_speed_s;
    const char *cabundle;
};

/* Resets h and sets r's options on it; the caller then runs easy_perform. */
void curl_request_setup(const struct curl_dl *cu, CURL *h, const struct curl_request *r);

/* The easy handles of one store, shared by its callers' threads: a call takes an idle handle
 * (its connection to the store stays open between calls) or a new one when every kept handle
 * is busy, and gives it back; at most CURL_POOL_IDLE idle handles are kept. Parallel part
 * uploads and a listing beside a backup each get their own connection this way. */
struct curl_pool {
    const struct curl_dl *curl;
    pthread_mutex_t mu;
    CURL *idle[CURL_POOL_IDLE]; /* under mu */
    unsigned n_idle;
};

void curl_pool_init(struct curl_pool *p, const struct curl_dl *curl);
/* an idle or a new handle (reset by the caller before use); NULL when libcurl cannot make one */
CURL *curl_pool_take(struct curl_pool *p);
void curl_pool_give(struct curl_pool *p, CURL *h);
/* frees the idle handles; every taken one must have been given back */
void curl_pool_destroy(struct curl_pool *p);

#endif
