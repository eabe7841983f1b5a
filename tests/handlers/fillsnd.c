/* fillsnd: leaves the client's socket with a full send buffer, as a client
 * that never reads does after enough responses (issue 11, finding 7), but
 * at once and exactly.
 *   /fill  answers 200 with a 1-byte body, sent before the handler returns
 *          (forkd_sendfile flushes the head), then finds the client's
 *          socket by its peer port and writes junk into it with
 *          MSG_DONTWAIT until EAGAIN: whatever the server writes next on
 *          this connection (the refusal of a pipelined bad request) finds
 *          no room;
 *   else   200 "ok\n". */
#define _GNU_SOURCE /* memfd_create */
#include <forkd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define FILLSND_MAX_FD 4096
#define FILLSND_MAX_WRITES 4096 /* 64 KiB each: 256 MiB, never reached */

/* The descriptor of the connection from 127.0.0.1:port, or -1. */
static int
fillsnd_find(unsigned port)
{
    for (int fd = 3; fd < FILLSND_MAX_FD; fd++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0 &&
            sa.sin_family == AF_INET && ntohs(sa.sin_port) == port)
            return fd;
    }
    return -1;
}

static int
fillsnd_handle(struct forkd_req *req, void *state)
{
    const char *path = forkd_getenv(req, "PATH_INFO");
    const char *port = forkd_getenv(req, "REMOTE_PORT");
    static char junk[65536];
    int mfd, fd;

    (void)state;
    if (path == NULL || strcmp(path, "/fill") != 0 || port == NULL) {
        struct forkd_header h[] = {{"Content-Type", "text/plain"},
                                   {"Content-Length", "3"}};
        if (forkd_start_response(req, "200 OK", h, 2) != 0)
            return -1;
        return forkd_write(req, "ok\n", 3) == 3 ? 0 : -1;
    }
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", "1"}};
    if ((mfd = memfd_create("fillsnd", MFD_CLOEXEC)) < 0)
        return -1;
    if (write(mfd, "x", 1) != 1 || forkd_start_response(req, "200 OK", h, 2) ||
        forkd_sendfile(req, mfd, 0, 1) != 1) {
        close(mfd);
        return -1;
    }
    close(mfd);
    if ((fd = fillsnd_find((unsigned)atoi(port))) < 0)
        return 0;
    memset(junk, 'j', sizeof junk);
    for (int i = 0; i < FILLSND_MAX_WRITES; i++)
        if (send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            break; /* EAGAIN: full */
    return 0;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .handle = fillsnd_handle,
};
