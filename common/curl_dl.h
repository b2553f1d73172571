/* curl_dl.h - libcurl loaded with dlopen, once per process, on first use: the agent and
 * reset-member do not link it (its ~25 libraries would cost every start), and only a configured
 * store or --restore-from URL pays for loading it. Requests themselves are the callers'. */
#ifndef ER_CURL_DL_H
#define ER_CURL_DL_H

#include <curl/curl.h> /* types and constants only: the functions come from dlopen */
#include <stddef.h>

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

#endif
