/* snapjob.c - the deferred-response job, the file-call worker pool and its watchdog, and the
 * count of detached stream threads (see snapjob.h for the contract).
 *
 * The event loop only queues tasks and reads what workers published; every file-system call
 * runs on a worker. A thread stuck in the kernel on a hung volume cannot be cancelled, so the
 * watchdog answers its request with 503 and the pool abandons the thread at shutdown. What a
 * request does with the files is the features'. */
#include "snapjob.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounds.h"
#include "clock.h"
#include "hex.h"
#include "log.h"
#include "spool.h"

#define SNAPJOB_MAX_HEADERS 6
#define SNAPJOB_HEADER_VALUE 80

/* ---- the job ------------------------------------------------------------------------------- */

struct snapjob {
    pthread_mutex_t mu;
    int refs;
    struct http_body_wakeup *wakeup;
    bool closed;
    struct spool *spool;
    bool ready;
    int status;
    const char *content_type;
    int64_t content_length;
    char hname[SNAPJOB_MAX_HEADERS][32];
    char hvalue[SNAPJOB_MAX_HEADERS][SNAPJOB_HEADER_VALUE];
    size_t n_headers;
    char *body; /* whole deferred body, or NULL */
    size_t body_len, body_off;
    bool have_trailer;
    char trailer[65];
    void (*on_close)(void *arg, bool completed);
    void *on_close_arg;
    struct http_body_source src;
    /* file calls: start of the one in progress (0: none), and whether the watchdog answered */
    atomic_uint_fast64_t fs_t0;
    atomic_bool timed_out;
    struct snapjob *wnext, *wprev; /* the pool's watch list (under the pool's mu) */
    bool watched;
};

struct snapjob *snapjob_new(void)
{
    struct snapjob *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1;
    j->content_length = -1;
    return j;
}

void snapjob_hold(struct snapjob *j)
{
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

/* Drops n references at once: one decision to free, whatever the count (a job can be on the
 * watch list and in a task at the same time). */
static void release_refs(struct snapjob *j, int n)
{
    pthread_mutex_lock(&j->mu);
    j->refs -= n;
    int left = j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    spool_free(j->spool);
    free(j->body);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void snapjob_release(struct snapjob *j)
{
    release_refs(j, 1);
}

void snapjob_set_spool(struct snapjob *j, struct spool *sp)
{
    pthread_mutex_lock(&j->mu);
    j->spool = sp;
    pthread_mutex_unlock(&j->mu);
}

/* Called with j->mu held. http_body_wakeup is thread-safe and valid until close(). */
static void wake_locked(struct snapjob *j)
{
    if (j->wakeup && !j->closed)
        http_body_wakeup(j->wakeup);
}

void snapjob_notify(void *job)
{
    struct snapjob *j = job;
    pthread_mutex_lock(&j->mu);
    wake_locked(j);
    pthread_mutex_unlock(&j->mu);
}

void snapjob_header(struct snapjob *j, const char *name, const char *value)
{
    pthread_mutex_lock(&j->mu);
    if (!j->ready && j->n_headers < SNAPJOB_MAX_HEADERS) {
        snprintf(j->hname[j->n_headers], sizeof j->hname[0], "%s", name);
        snprintf(j->hvalue[j->n_headers], sizeof j->hvalue[0], "%s", value);
        j->n_headers++;
    }
    pthread_mutex_unlock(&j->mu);
}

bool snapjob_ready(struct snapjob *j, int status, const char *content_type, int64_t content_length)
{
    pthread_mutex_lock(&j->mu);
    bool first = !j->ready;
    if (first) {
        j->status = status;
        j->content_type = content_type;
        j->content_length = content_length;
        j->ready = true;
        wake_locked(j);
    }
    pthread_mutex_unlock(&j->mu);
    return first;
}

bool snapjob_json(struct snapjob *j, int status, const char *json)
{
    char *copy = strdup(json);
    pthread_mutex_lock(&j->mu);
    bool first = !j->ready;
    if (first) {
        j->body = copy;
        j->body_len = copy ? strlen(copy) : 0;
        j->body_off = 0;
        j->status = copy ? status : 500;
        j->content_type = "application/json";
        j->content_length = (int64_t)j->body_len;
        j->ready = true;
        wake_locked(j);
        copy = NULL;
    }
    pthread_mutex_unlock(&j->mu);
    free(copy);
    return first;
}

bool snapjob_error(struct snapjob *j, int status, const char *msg)
{
    char body[HTTP_ERROR_BODY_MAX];
    http_error_body(body, sizeof body, status, msg);
    return snapjob_json(j, status, body);
}

void snapjob_trailer(struct snapjob *j, const uint8_t digest[32])
{
    pthread_mutex_lock(&j->mu);
    hex_encode(digest, 32, j->trailer);
    j->have_trailer = true;
    pthread_mutex_unlock(&j->mu);
}

void snapjob_on_close(struct snapjob *j, void (*fn)(void *arg, bool completed), void *arg)
{
    j->on_close = fn;
    j->on_close_arg = arg;
}

static ssize_t job_read(void *ctx, uint8_t *buf, size_t len)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    if (j->body) {
        size_t n = j->body_len - j->body_off < len ? j->body_len - j->body_off : len;
        memcpy(buf, j->body + j->body_off, n);
        j->body_off += n;
        pthread_mutex_unlock(&j->mu);
        return (ssize_t)n;
    }
    struct spool *sp = j->spool;
    pthread_mutex_unlock(&j->mu);
    if (!sp)
        return 0; /* HEAD, or headers-only */
    ssize_t r = spool_read(sp, buf, len);
    if (r == -EAGAIN)
        return HTTP_BODY_AGAIN;
    if (r < 0)
        return HTTP_BODY_ABORT;
    return r;
}

static int job_headers(void *ctx, struct http_response *resp)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    if (!j->ready) {
        pthread_mutex_unlock(&j->mu);
        return HTTP_BODY_AGAIN;
    }
    resp->status = j->status;
    resp->content_type = j->content_type;
    resp->content_length = j->content_length;
    for (size_t i = 0; i < j->n_headers; i++)
        http_response_add_header(resp, j->hname[i], j->hvalue[i]);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static size_t job_trailers(void *ctx, struct http_header *out, size_t max)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    size_t n = 0;
    if (j->have_trailer && !j->body && max > 0) {
        out[0].name = "x-etcd-snapshot-sha256";
        out[0].value = j->trailer; /* lives in the job, which outlives close() */
        n = 1;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

static void job_attach(void *ctx, struct http_body_wakeup *w)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    j->wakeup = w;
    pthread_mutex_unlock(&j->mu);
}

static void job_close(void *ctx, bool completed)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    j->closed = true;
    j->wakeup = NULL;
    struct spool *sp = j->spool;
    pthread_mutex_unlock(&j->mu);
    if (sp)
        spool_cancel(sp); /* a worker still producing stops at its next write */
    if (j->on_close)
        j->on_close(j->on_close_arg, completed);
    snapjob_release(j);
}

void snapjob_attach(struct snapjob *j, struct http_response *resp)
{
    j->src = (struct http_body_source){
        .read = job_read,
        .trailers = job_trailers,
        .close = job_close,
        .attach = job_attach,
        .headers = job_headers,
        .ctx = j,
    };
    resp->source = &j->src;
    resp->defer_headers = true;
    /* provisional: the headers() callback sets the real status and type */
    resp->status = 200;
    resp->content_type = "application/octet-stream";
}

/* ---- the pool ------------------------------------------------------------------------------ */

struct task {
    struct task *next;
    struct snapjob *job;
    snapjob_task_fn fn;
    void *arg;
};

struct snapjob_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;       /* a task queued, or stopping */
    pthread_cond_t tick;       /* the watchdog's sleep (monotonic) */
    pthread_cond_t threads_cv; /* a counted thread ended */
    struct task *head, *tail;
    unsigned queued, queue_max, workers, idle, running; /* running: workers alive */
    unsigned threads;                                   /* detached stream threads alive */
    unsigned timeout_ms;
    struct snapjob *watch; /* watched jobs */
    pthread_t watchdog;
    bool watchdog_on;
    atomic_bool stopping;
};

static void watch_locked(struct snapjob_pool *p, struct snapjob *j)
{
    if (j->watched)
        return;
    snapjob_hold(j);
    j->watched = true;
    j->wprev = NULL;
    j->wnext = p->watch;
    if (p->watch)
        p->watch->wprev = j;
    p->watch = j;
}

/* Returns whether the job was watched (the caller drops the list's reference, unlocked). */
static bool unwatch_locked(struct snapjob_pool *p, struct snapjob *j)
{
    if (!j->watched)
        return false;
    if (j->wprev)
        j->wprev->wnext = j->wnext;
    else
        p->watch = j->wnext;
    if (j->wnext)
        j->wnext->wprev = j->wprev;
    j->wnext = j->wprev = NULL;
    j->watched = false;
    return true;
}

static void *watchdog_main(void *arg);

void snapjob_watch(struct snapjob_pool *p, struct snapjob *j)
{
    pthread_mutex_lock(&p->mu);
    if (!p->watchdog_on && pthread_create(&p->watchdog, NULL, watchdog_main, p) == 0)
        p->watchdog_on = true; /* without it, a hung file call is never answered 503 */
    watch_locked(p, j);
    pthread_mutex_unlock(&p->mu);
}

void snapjob_unwatch(struct snapjob_pool *p, struct snapjob *j)
{
    pthread_mutex_lock(&p->mu);
    bool was = unwatch_locked(p, j);
    pthread_mutex_unlock(&p->mu);
    if (was)
        snapjob_release(j);
}

void snapjob_fs_begin(struct snapjob *j)
{
    if (j)
        atomic_store(&j->fs_t0, (uint64_t)clock_mono_ms());
}

bool snapjob_fs_end(struct snapjob *j)
{
    if (!j)
        return true;
    atomic_store(&j->fs_t0, 0);
    return !atomic_load(&j->timed_out);
}

static void time_out(struct snapjob *j, unsigned timeout_ms)
{
    char msg[160];
    atomic_store(&j->timed_out, true);
    snprintf(msg, sizeof msg,
             "the volume did not answer within %u ms (hung file system?); retry later", timeout_ms);
    if (snapjob_error(j, 503, msg))
        log_msg(LOG_WARN, "snapshot request answered 503: a file call took over %u ms", timeout_ms);
}

static void *watchdog_main(void *arg)
{
    struct snapjob_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!atomic_load(&p->stopping)) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += (long)SNAPJOB_WATCHDOG_TICK_MS * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->tick, &p->mu, &dl);
        uint64_t now = (uint64_t)clock_mono_ms();
        /* Tasks still queued past the deadline never run: answered and dropped here. */
        for (struct task **tp = &p->head; *tp;) {
            struct task *t = *tp;
            uint64_t t0 = atomic_load(&t->job->fs_t0);
            if (t0 == 0 || now - t0 < p->timeout_ms) {
                tp = &t->next;
                continue;
            }
            *tp = t->next;
            if (p->tail == t) {
                p->tail = NULL;
                for (struct task *q = p->head; q; q = q->next)
                    p->tail = q;
            }
            p->queued--;
            time_out(t->job, p->timeout_ms);
            unwatch_locked(p, t->job);
            release_refs(t->job, 2); /* the list's and the task's */
            free(t->arg);
            free(t);
        }
        for (struct snapjob *j = p->watch; j; j = j->wnext) {
            uint64_t t0 = atomic_load(&j->fs_t0);
            if (t0 != 0 && now - t0 >= p->timeout_ms && !atomic_load(&j->timed_out))
                time_out(j, p->timeout_ms);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct snapjob_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !atomic_load(&p->stopping))
            pthread_cond_wait(&p->work, &p->mu);
        if (!p->head)
            break; /* stopping */
        struct task *t = p->head;
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        p->idle--;
        pthread_mutex_unlock(&p->mu);
        t->fn(t->job, t->arg); /* fs clock running since snapjob_run */
        atomic_store(&t->job->fs_t0, 0);
        pthread_mutex_lock(&p->mu);
        bool watched = unwatch_locked(p, t->job);
        pthread_mutex_unlock(&p->mu);
        release_refs(t->job, watched ? 2 : 1); /* the list's (if still there) and the task's */
        free(t);
        pthread_mutex_lock(&p->mu);
        p->idle++;
    }
    p->running--;
    p->idle--;
    pthread_cond_broadcast(&p->threads_cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct snapjob_pool *snapjob_pool_new(unsigned workers, unsigned queue_max, unsigned timeout_ms)
{
    struct snapjob_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->tick, &ca);
    pthread_cond_init(&p->threads_cv, &ca);
    pthread_condattr_destroy(&ca);
    p->queue_max = queue_max;
    p->timeout_ms = timeout_ms;
    p->workers = workers;
    if (workers == 0) {
        (void)snapjob_pool_free(p);
        return NULL;
    }
    return p;
}

/* Threads start with the first task that needs them, not at start-up: an agent nobody asks for
 * files keeps its idle footprint (each thread costs stack and TLS pages). Called locked. */
static int start_threads_locked(struct snapjob_pool *p)
{
    if (!p->watchdog_on) {
        if (pthread_create(&p->watchdog, NULL, watchdog_main, p) != 0)
            return -EAGAIN;
        p->watchdog_on = true;
    }
    if (p->idle > 0 || p->running >= p->workers)
        return 0;
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, worker_main, p);
    pthread_attr_destroy(&attr);
    if (r != 0)
        return p->running > 0 ? 0 : -EAGAIN; /* the running ones will take it */
    p->running++;
    p->idle++;
    return 0;
}

int snapjob_run(struct snapjob_pool *p, struct http_response *resp, snapjob_task_fn fn, void *arg)
{
    struct task *t = calloc(1, sizeof *t);
    struct snapjob *j = snapjob_new();
    if (!t || !j) {
        free(t);
        if (j)
            snapjob_release(j);
        return -ENOMEM;
    }
    pthread_mutex_lock(&p->mu);
    if (atomic_load(&p->stopping) || p->queued >= p->queue_max + p->idle ||
        start_threads_locked(p) < 0) {
        pthread_mutex_unlock(&p->mu);
        free(t);
        snapjob_release(j);
        return -EBUSY;
    }
    t->job = j;
    t->fn = fn;
    t->arg = arg;
    snapjob_hold(j); /* the task's */
    atomic_store(&j->fs_t0, (uint64_t)clock_mono_ms());
    watch_locked(p, j);
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    snapjob_attach(j, resp);
    return 0;
}

int snapjob_thread_start(struct snapjob_pool *p, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&p->mu);
    p->threads++;
    pthread_mutex_unlock(&p->mu);
    int r = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        snapjob_thread_done(p);
        return -r;
    }
    return 0;
}

void snapjob_thread_done(struct snapjob_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->threads--;
    pthread_cond_broadcast(&p->threads_cv);
    pthread_mutex_unlock(&p->mu);
}

bool snapjob_stopping(const struct snapjob_pool *p)
{
    return atomic_load(&p->stopping);
}

bool snapjob_pool_free(struct snapjob_pool *p)
{
    if (!p)
        return true;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->work);
    pthread_cond_broadcast(&p->tick);
    /* Queued tasks never run. */
    struct task *t = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    while (t) {
        struct task *next = t->next;
        snapjob_error(t->job, 503, "shutting down");
        release_refs(t->job, unwatch_locked(p, t->job) ? 2 : 1);
        free(t->arg);
        free(t);
        t = next;
    }
    pthread_mutex_unlock(&p->mu);
    if (p->watchdog_on)
        pthread_join(p->watchdog, NULL); /* never blocks on a file */

    /* Idle workers exit at once; one stuck in a file call is abandoned after the wait. */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += SNAPSHOT_SHUTDOWN_WAIT_MS / 1000;
    pthread_mutex_lock(&p->mu);
    while (p->running > 0 || p->threads > 0)
        if (pthread_cond_timedwait(&p->threads_cv, &p->mu, &dl) == ETIMEDOUT)
            break;
    unsigned left = p->running + p->threads;
    pthread_mutex_unlock(&p->mu);
    if (left > 0) {
        log_msg(LOG_WARN, "snapshot shutdown: %u thread(s) still busy, abandoned", left);
        return false; /* their state stays allocated: the process is exiting */
    }
    /* Jobs still watched belong to answered responses: drop the list's references. */
    while (p->watch) {
        struct snapjob *j = p->watch;
        /* A watched job holds the list's reference, so the loops above never freed it; the
         * analyzer cannot see that invariant. */
        unwatch_locked(p, j); // NOLINT(clang-analyzer-unix.Malloc)
        snapjob_release(j);
    }
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->tick);
    pthread_cond_destroy(&p->threads_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return true;
}
