/* sendpipe: forkd_sendfile on descriptors that are not regular files
 * (issue 11, finding 8).  The body is SENDPIPE_LEN bytes of the pattern
 * (i * 7) % 251, written into a pipe (/pipe) or a socketpair (/socket)
 * whose write end is then closed: it fits the buffer, so no thread is
 * needed.  The head promises Content-Length: SENDPIPE_LEN. */
#include <forkd.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SENDPIPE_LEN 5000

static int
sendpipe_handle(struct forkd_req *req, void *state)
{
    const char *path = forkd_getenv(req, "PATH_INFO");
    unsigned char data[SENDPIPE_LEN];
    int fds[2], rc;
    char len[32];

    (void)state;
    for (int i = 0; i < SENDPIPE_LEN; i++)
        data[i] = (unsigned char)(i * 7 % 251);
    if (path && strcmp(path, "/socket") == 0)
        rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    else
        rc = pipe(fds);
    if (rc != 0)
        return -1;
    /* fds[0] is read, fds[1] written (either end of a socketpair works) */
    if (write(fds[1], data, sizeof data) != (ssize_t)sizeof data) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    close(fds[1]);
    snprintf(len, sizeof len, "%d", SENDPIPE_LEN);
    struct forkd_header h[] = {{"Content-Type", "application/octet-stream"},
                               {"Content-Length", len}};
    rc = forkd_start_response(req, "200 OK", h, 2) == 0 &&
                 forkd_sendfile(req, fds[0], 0, SENDPIPE_LEN) == SENDPIPE_LEN
             ? 0
             : -1;
    close(fds[0]);
    return rc;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .handle = sendpipe_handle,
};
