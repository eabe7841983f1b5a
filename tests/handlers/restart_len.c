/* restart_len: start_response twice, with body bytes buffered in between
 * (issue 11, finding 2).
 *   /restart  200 without a length, 16000 x 'A', start_response again with
 *             Content-Length: 10, then 1000 x 'B': more than the length.
 *   /oops     100 x 'C', start_response again with "500 Internal Server
 *             Error" and Content-Length: 5, then "oops\n": exactly that.
 *   anything else: 200 "ok PATH\n" with its length. */
#include <forkd.h>

#include <stdio.h>
#include <string.h>

static char fill[16000];

static int
restart_handle(struct forkd_req *req, void *state)
{
    const char *path = forkd_getenv(req, "PATH_INFO");
    char line[256], len[32];
    int k;

    (void)state;
    if (path == NULL)
        path = "";
    if (strcmp(path, "/restart") == 0) {
        struct forkd_header h1[] = {{"Content-Type", "text/plain"}};
        struct forkd_header h2[] = {{"Content-Type", "text/plain"},
                                    {"Content-Length", "10"}};
        memset(fill, 'A', sizeof fill);
        (void)forkd_start_response(req, "200 OK", h1, 1);
        (void)forkd_write(req, fill, 16000);
        (void)forkd_start_response(req, "200 OK", h2, 2);
        memset(fill, 'B', 1000);
        (void)forkd_write(req, fill, 1000);
        return 0;
    }
    if (strcmp(path, "/oops") == 0) {
        struct forkd_header h1[] = {{"Content-Type", "text/plain"}};
        struct forkd_header h2[] = {{"Content-Type", "text/plain"},
                                    {"Content-Length", "5"}};
        char c[100];
        memset(c, 'C', sizeof c);
        if (forkd_start_response(req, "200 OK", h1, 1) != 0 ||
            forkd_write(req, c, sizeof c) != (ssize_t)sizeof c)
            return -1;
        if (forkd_start_response(req, "500 Internal Server Error", h2, 2) != 0)
            return -1;
        return forkd_write(req, "oops\n", 5) == 5 ? 0 : -1;
    }
    k = snprintf(line, sizeof line, "ok %s\n", path);
    snprintf(len, sizeof len, "%d", k);
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", len}};
    if (forkd_start_response(req, "200 OK", h, 2) != 0)
        return -1;
    return forkd_write(req, line, (size_t)k) == k ? 0 : -1;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .handle = restart_handle,
};
