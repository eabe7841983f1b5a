/* len204: a handler that gives Content-Length with a 204 (issue 11): the
 * response must carry none (RFC 9110 8.6: a 204 has no content, and a
 * length there would make a client wait for bytes).
 *   /204   204 No Content with "Content-Length: 5" and a 5-byte write;
 *   else   200 "ok PATH\n". */
#include <forkd.h>

#include <stdio.h>
#include <string.h>

static int
len204_handle(struct forkd_req *req, void *state)
{
    const char *path = forkd_getenv(req, "PATH_INFO");
    char line[256], len[32];
    int k;

    (void)state;
    if (path && strcmp(path, "/204") == 0) {
        struct forkd_header h[] = {{"Content-Length", "5"}, {"X-Kind", "204"}};
        if (forkd_start_response(req, "204 No Content", h, 2) != 0)
            return -1;
        (void)forkd_write(req, "hello", 5); /* dropped: no body on 204 */
        return 0;
    }
    k = snprintf(line, sizeof line, "ok %s\n", path ? path : "");
    snprintf(len, sizeof len, "%d", k);
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", len}};
    if (forkd_start_response(req, "200 OK", h, 2) != 0)
        return -1;
    return forkd_write(req, line, (size_t)k) == k ? 0 : -1;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .handle = len204_handle,
};
