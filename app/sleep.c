/* sleep: the simulated I/O-bound request.  GET /?ms=N blocks the handling
 * thread N milliseconds (default 100) and answers "slept N ms". */
#include "forkd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SLEEP_DEFAULT_MS 100
#define SLEEP_MAX_MS 600000 /* ten minutes: far beyond any sane timeout */

/* The value of key in the query string qs ("a=1&ms=250") as a decimal
 * number; def when the key is absent, empty or not all digits; max when the
 * number is larger than max (no overflow: digits stop counting at max). */
static unsigned long
sleep_query_number(const char *qs, const char *key, unsigned long def,
                   unsigned long max)
{
    size_t key_len = strlen(key);
    const char *p = qs;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len > key_len && strncmp(p, key, key_len) == 0 &&
            p[key_len] == '=') {
            const char *d = p + key_len + 1;
            const char *d_end = p + len;
            unsigned long n = 0;

            if (d == d_end)
                return def;
            for (; d < d_end; d++) {
                if (*d < '0' || *d > '9')
                    return def;
                if (n <= max)
                    n = n * 10 + (unsigned long)(*d - '0');
            }
            return n > max ? max : n;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return def;
}

/* Sleep ms milliseconds in the calling thread; a signal does not shorten
 * it (EINTR resumes with the time left). */
static void
sleep_ms(unsigned long ms)
{
    struct timespec left = {.tv_sec = (time_t)(ms / 1000),
                            .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&left, &left) == -1 && errno == EINTR)
        continue;
}

static int
sleep_handle(struct forkd_req *req, void *state)
{
    static const struct forkd_header headers[] = {
        {"Content-Type", "text/plain"},
    };
    const char *qs = forkd_getenv(req, "QUERY_STRING");
    unsigned long ms;
    char body[64];
    int len;

    (void)state;
    ms = sleep_query_number(qs != NULL ? qs : "", "ms", SLEEP_DEFAULT_MS,
                            SLEEP_MAX_MS);
    sleep_ms(ms);

    len = snprintf(body, sizeof(body), "slept %lu ms\n", ms);
    if (forkd_start_response(req, "200 OK", headers,
                             sizeof(headers) / sizeof(headers[0])) == -1)
        return -1;
    if (forkd_write(req, body, (size_t)len) == -1)
        return -1;
    return 0;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = NULL,
    .handle = sleep_handle,
    .fini = NULL,
};
