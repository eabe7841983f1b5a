/* hello: the smallest handler, "Hello, World!" for benchmarks of the server
 * itself: no allocation, no environ lookup, a constant head and body. */
#include "forkd.h"

static const char hello_body[] = "Hello, World!\n";

/* Content-Length is given so the server need not compute or chunk it; keep
 * it in step with hello_body (checked below). */
static const struct forkd_header hello_headers[] = {
    {"Content-Type", "text/plain"},
    {"Content-Length", "14"},
};

_Static_assert(sizeof(hello_body) - 1 == 14, "Content-Length of hello_body");

static int
hello_handle(struct forkd_req *req, void *state)
{
    (void)state;
    if (forkd_start_response(req, "200 OK", hello_headers,
                             sizeof(hello_headers) /
                                 sizeof(hello_headers[0])) == -1)
        return -1;
    if (forkd_write(req, hello_body, sizeof(hello_body) - 1) == -1)
        return -1;
    return 0;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = NULL,
    .handle = hello_handle,
    .fini = NULL,
};
