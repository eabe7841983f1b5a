/* cpu: the simulated CPU-bound request.  GET /?n=N runs N rounds of an
 * integer mixing function and answers the final value in decimal. */
#include "forkd.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* About 1 ms by default: a round of cpu_work is a dependent chain of two
 * multiplies and three shift-xors, measured at 4 ns per round on an AMD EPYC
 * server core at -O2; faster cores take less. */
#define CPU_DEFAULT_N 250000ULL
#define CPU_MAX_N 150000000000ULL /* about 10 minutes, as sleep's cap */

/* The value of key in the query string qs ("a=1&n=250") as a decimal
 * number; def when the key is absent, empty or not all digits; max when the
 * number is larger than max.  max * 10 + 9 must fit: digits stop counting
 * once the value passed max. */
static unsigned long long
cpu_query_number(const char *qs, const char *key, unsigned long long def,
                 unsigned long long max)
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
            unsigned long long n = 0;

            if (d == d_end)
                return def;
            for (; d < d_end; d++) {
                if (*d < '0' || *d > '9')
                    return def;
                if (n <= max)
                    n = n * 10 + (unsigned long long)(*d - '0');
            }
            return n > max ? max : n;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return def;
}

/* n rounds of splitmix64's finaliser over a counter.  Every round depends on
 * the previous one and the result is printed, so the compiler can neither
 * drop nor vectorise the loop, and there is no closed form to fold it to. */
static uint64_t
cpu_work(uint64_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    for (uint64_t i = 0; i < n; i++) {
        x += i;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        x ^= x >> 31;
    }
    return x;
}

static int
cpu_handle(struct forkd_req *req, void *state)
{
    static const struct forkd_header headers[] = {
        {"Content-Type", "text/plain"},
    };
    const char *qs = forkd_getenv(req, "QUERY_STRING");
    unsigned long long n;
    char body[32];
    int len;

    (void)state;
    n = cpu_query_number(qs != NULL ? qs : "", "n", CPU_DEFAULT_N, CPU_MAX_N);
    len =
        snprintf(body, sizeof(body), "%llu\n", (unsigned long long)cpu_work(n));
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
    .handle = cpu_handle,
    .fini = NULL,
};
