/* fdhog: takes every descriptor the worker may open (issue 11, finding 6).
 *   /hog   open /dev/null until EMFILE (at most FDHOG_MAX), keep them,
 *          answer 200 with the count;
 *   /free  close them all, answer 200;
 *   else   200 "ok". */
#include <forkd.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FDHOG_MAX 65536

static int fdhog_fds[FDHOG_MAX];
static int fdhog_n;

static int
fdhog_answer(struct forkd_req *req, const char *text)
{
    char len[32];

    snprintf(len, sizeof len, "%zu", strlen(text));
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", len}};
    if (forkd_start_response(req, "200 OK", h, 2) != 0)
        return -1;
    return forkd_write(req, text, strlen(text)) < 0 ? -1 : 0;
}

static int
fdhog_handle(struct forkd_req *req, void *state)
{
    const char *path = forkd_getenv(req, "PATH_INFO");
    char line[64];

    (void)state;
    if (path && strcmp(path, "/hog") == 0) {
        int fd, err = 0;
        while (fdhog_n < FDHOG_MAX) {
            if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
                err = errno;
                break;
            }
            fdhog_fds[fdhog_n++] = fd;
        }
        snprintf(line, sizeof line, "hogged %d %s\n", fdhog_n,
                 err == EMFILE ? "EMFILE" : strerror(err));
        return fdhog_answer(req, line);
    }
    if (path && strcmp(path, "/free") == 0) {
        /* Room for the answer first: it needs no descriptor, but be sure. */
        while (fdhog_n > 0)
            close(fdhog_fds[--fdhog_n]);
        return fdhog_answer(req, "freed\n");
    }
    return fdhog_answer(req, "ok\n");
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .handle = fdhog_handle,
};
