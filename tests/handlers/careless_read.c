/* careless_read: a handler that ignores the error of forkd_read, as many
 * do (issue 11, finding 1).  It reads the body with
 *     while ((n = forkd_read(req, buf, sizeof buf)) > 0) total += n;
 * never looking at the final -1, reads once more, and answers 200 with
 * "path=P total=N again=R" (R: what that last forkd_read returned).  The
 * buffer is 8 KiB so that one forkd_read can take two 4 KiB chunks. */
#include <forkd.h>

#include <stdio.h>
#include <string.h>

static int
careless_handle(struct forkd_req *req, void *state)
{
    char buf[8192], line[256], len[32];
    const char *path = forkd_getenv(req, "PATH_INFO");
    long long total = 0;
    ssize_t n, again;
    int k;

    (void)state;
    while ((n = forkd_read(req, buf, sizeof buf)) > 0)
        total += n;
    again = forkd_read(req, buf, sizeof buf);
    k = snprintf(line, sizeof line, "path=%s total=%lld again=%zd\n",
                 path ? path : "", total, again);
    snprintf(len, sizeof len, "%d", k);
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", len}};
    (void)forkd_start_response(req, "200 OK", h, 2); /* careless */
    (void)forkd_write(req, line, (size_t)k);
    return 0;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .handle = careless_handle,
};
