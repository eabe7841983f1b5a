/* uwsgi_bench.c: the uWSGI peer of forkd's example handlers, for the
 * symcall plugin (uwsgi-core).  scripts/bench builds it at bench time:
 *   uwsgi --dot-h > uwsgi.h
 *   cc -shared -fPIC $(uwsgi --cflags) -I. -o uwsgi_bench.so uwsgi_bench.c
 * and runs it with --plugin symcall --dlopen ./uwsgi_bench.so
 * --symcall uwsgi_bench --http-socket-modifier1 18.
 *
 *   GET /          "Hello, World!\n" (app/hello.c)
 *   GET /cpu?n=N   N rounds of app/cpu.c's mixing function (default 250000)
 *   GET /sleep?ms=N  a blocking sleep of N ms (default 100), as app/sleep.c
 */
#include <uwsgi.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int uwsgi_bench(struct wsgi_request *wsgi_req);

/* The decimal value of key in the query string qs (qs_len bytes), or def. */
static unsigned long long
query_number(const char *qs, size_t qs_len, const char *key,
             unsigned long long def)
{
    size_t key_len = strlen(key), i = 0;

    while (i < qs_len) {
        size_t end = i;
        while (end < qs_len && qs[end] != '&')
            end++;
        if (end - i > key_len && memcmp(qs + i, key, key_len) == 0 &&
            qs[i + key_len] == '=') {
            unsigned long long n = 0;
            size_t d = i + key_len + 1;
            if (d == end)
                return def;
            for (; d < end; d++) {
                if (qs[d] < '0' || qs[d] > '9')
                    return def;
                n = n * 10 + (unsigned long long)(qs[d] - '0');
            }
            return n;
        }
        i = end + 1;
    }
    return def;
}

/* The same work as app/cpu.c's cpu_work. */
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
reply(struct wsgi_request *wsgi_req, const char *body, size_t len)
{
    char clen[24];
    int n = snprintf(clen, sizeof(clen), "%zu", len);

    uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
    uwsgi_response_add_header(wsgi_req, "Content-Type", 12, "text/plain", 10);
    uwsgi_response_add_header(wsgi_req, "Content-Length", 14, clen,
                              (uint16_t)n);
    uwsgi_response_write_body_do(wsgi_req, (char *)body, len);
    return UWSGI_OK;
}

int
uwsgi_bench(struct wsgi_request *wsgi_req)
{
    char body[64];
    int n;

    if (uwsgi_parse_vars(wsgi_req))
        return -1;
    if (wsgi_req->path_info_len == 4 &&
        memcmp(wsgi_req->path_info, "/cpu", 4) == 0) {
        unsigned long long rounds = query_number(
            wsgi_req->query_string, wsgi_req->query_string_len, "n", 250000);
        n = snprintf(body, sizeof(body), "%llu\n",
                     (unsigned long long)cpu_work(rounds));
        return reply(wsgi_req, body, (size_t)n);
    }
    if (wsgi_req->path_info_len == 6 &&
        memcmp(wsgi_req->path_info, "/sleep", 6) == 0) {
        unsigned long long ms = query_number(
            wsgi_req->query_string, wsgi_req->query_string_len, "ms", 100);
        struct timespec ts = {(time_t)(ms / 1000),
                              (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1)
            continue;
        n = snprintf(body, sizeof(body), "slept %llu ms\n", ms);
        return reply(wsgi_req, body, (size_t)n);
    }
    return reply(wsgi_req, "Hello, World!\n", 14);
}
