/* resources: the app of the async-vs-sync articles.  GET /resource/<id>
 * "downloads" one resource (sleeps delay_ms) and GET /resources downloads
 * five concurrently in threads of their own, all within one request. */
#include "forkd.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESOURCES_DEFAULT_DELAY_MS 5000
#define RESOURCES_MAX_DELAY_MS 3600000UL /* an hour */
#define RESOURCES_N 5
#define RESOURCES_STACK (64 * 1024)

/* The worker's state, from init to fini. */
struct resources {
    unsigned long delay_ms;
};

/* One download of /resources, owned by resources_all's stack. */
struct resources_job {
    unsigned long delay_ms;
    int id;
    char result[32]; /* "dummy_result_id_<id>", written by the thread */
};

static const struct forkd_header resources_json[] = {
    {"Content-Type", "application/json"},
};

/* Sleep ms milliseconds in the calling thread; a signal does not shorten
 * it (EINTR resumes with the time left). */
static void
resources_sleep_ms(unsigned long ms)
{
    struct timespec left = {.tv_sec = (time_t)(ms / 1000),
                            .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&left, &left) == -1 && errno == EINTR)
        continue;
}

/* Parse s as a whole decimal number of milliseconds 0..max into *ms.
 * Returns 0, or -1 when s is empty, has a non-digit or exceeds max. */
static int
resources_parse_ms(const char *s, unsigned long max, unsigned long *ms)
{
    unsigned long n = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (unsigned long)(*s - '0');
        if (n > max)
            return -1;
    }
    *ms = n;
    return 0;
}

static int
resources_init(const struct forkd_option *opts, size_t n_opts, void **state)
{
    const char *value = forkd_option(opts, n_opts, "delay_ms");
    unsigned long delay_ms = RESOURCES_DEFAULT_DELAY_MS;
    struct resources *r;

    if (value != NULL &&
        resources_parse_ms(value, RESOURCES_MAX_DELAY_MS, &delay_ms) == -1) {
        forkd_log(NULL, FORKD_LOG_ERROR,
                  "resources: delay_ms: must be 0..%lu milliseconds, "
                  "got \"%s\"",
                  RESOURCES_MAX_DELAY_MS, value);
        return -1;
    }
    for (size_t i = 0; i < n_opts; i++) {
        if (strcmp(opts[i].key, "delay_ms") != 0)
            forkd_log(NULL, FORKD_LOG_WARN,
                      "resources: unknown option \"%s\" ignored", opts[i].key);
    }

    r = malloc(sizeof(*r));
    if (r == NULL) {
        forkd_log(NULL, FORKD_LOG_ERROR, "resources: out of memory");
        return -1;
    }
    r->delay_ms = delay_ms;
    *state = r;
    return 0;
}

static void
resources_fini(void *state)
{
    free(state);
}

/* Append the JSON string escape of s (no quotes) at out; returns the end.
 * out must have room for 6 bytes per byte of s. */
static char *
resources_escape(char *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            *out++ = '\\';
            *out++ = (char)*p;
        } else if (*p >= 0x20 && *p <= 0x7e) {
            *out++ = (char)*p;
        } else {
            memcpy(out, "\\u00", 4);
            out[4] = hex[*p >> 4];
            out[5] = hex[*p & 0xf];
            out += 6;
        }
    }
    return out;
}

static int
resources_send(struct forkd_req *req, const char *status,
               const struct forkd_header *headers, size_t n_headers,
               const char *body, size_t len)
{
    if (forkd_start_response(req, status, headers, n_headers) == -1)
        return -1;
    if (forkd_write(req, body, len) == -1)
        return -1;
    return 0;
}

/* GET /resource/<id>: id is PATH_INFO after the prefix, already decoded, so
 * it may hold any byte: it is escaped into the JSON string. */
static int
resources_one(struct forkd_req *req, const struct resources *r, const char *id)
{
    static const char prefix[] = "\"dummy_result_id_";
    size_t id_len = strlen(id);
    char *body, *end;

    if (id_len > (SIZE_MAX - sizeof(prefix) - 1) / 6) {
        forkd_log(req, FORKD_LOG_ERROR, "resources: id too long");
        return -1;
    }
    body = forkd_alloc(req, sizeof(prefix) + 1 + id_len * 6);
    if (body == NULL) {
        forkd_log(req, FORKD_LOG_ERROR, "resources: out of memory");
        return -1;
    }

    resources_sleep_ms(r->delay_ms);

    memcpy(body, prefix, sizeof(prefix) - 1);
    end = resources_escape(body + sizeof(prefix) - 1, id);
    *end++ = '"';
    return resources_send(req, "200 OK", resources_json, 1, body,
                          (size_t)(end - body));
}

static void *
resources_download(void *arg)
{
    struct resources_job *job = arg;

    resources_sleep_ms(job->delay_ms);
    snprintf(job->result, sizeof(job->result), "dummy_result_id_%d", job->id);
    return NULL;
}

/* GET /resources: five downloads at once, so the request takes delay_ms,
 * not five times it.  The threads block every signal: the worker's signals
 * must reach its main thread, which is what waits for them (in join). */
static int
resources_all(struct forkd_req *req, const struct resources *r)
{
    struct resources_job jobs[RESOURCES_N];
    pthread_t threads[RESOURCES_N];
    pthread_attr_t attr;
    sigset_t all, old;
    char body[RESOURCES_N * (sizeof(jobs[0].result) + 3) + 2];
    char msg[128];
    size_t len;
    int started = 0, err = 0;

    if ((err = pthread_attr_init(&attr)) != 0)
        goto fail;
    /* Only nanosleep and snprintf run there; if the size is refused (below
     * PTHREAD_STACK_MIN) the default stack does as well. */
    (void)pthread_attr_setstacksize(&attr, RESOURCES_STACK);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; started < RESOURCES_N; started++) {
        jobs[started].delay_ms = r->delay_ms;
        jobs[started].id = started + 1;
        err = pthread_create(&threads[started], &attr, resources_download,
                             &jobs[started]);
        if (err != 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (err != 0)
        goto fail;

    len = 0;
    body[len++] = '[';
    for (int i = 0; i < RESOURCES_N; i++) {
        len += (size_t)snprintf(body + len, sizeof(body) - len, "%s\"%s\"",
                                i > 0 ? "," : "", jobs[i].result);
    }
    body[len++] = ']';
    return resources_send(req, "200 OK", resources_json, 1, body, len);

fail:
    forkd_log(req, FORKD_LOG_ERROR, "resources: cannot start a download: %s",
              strerror_r(err, msg, sizeof(msg)));
    return -1;
}

static int
resources_handle(struct forkd_req *req, void *state)
{
    static const struct forkd_header text[] = {
        {"Content-Type", "text/plain"},
    };
    static const char one[] = "/resource/";
    static const char not_found[] = "not found\n";
    const struct resources *r = state;
    const char *path = forkd_getenv(req, "PATH_INFO");

    if (path == NULL)
        path = "";
    if (strcmp(path, "/resources") == 0)
        return resources_all(req, r);
    if (strncmp(path, one, sizeof(one) - 1) == 0 &&
        path[sizeof(one) - 1] != '\0' &&
        strchr(path + sizeof(one) - 1, '/') == NULL)
        return resources_one(req, r, path + sizeof(one) - 1);
    return resources_send(req, "404 Not Found", text, 1, not_found,
                          sizeof(not_found) - 1);
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = resources_init,
    .handle = resources_handle,
    .fini = resources_fini,
};
