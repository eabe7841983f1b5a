/* bigfile: a large response, for the benchmark's 1 MiB workload.
 *   GET /mem   1 MiB written with forkd_write from a static buffer
 *   GET /file  the file named by the [app] option `file`, sent with
 *              forkd_sendfile (the descriptor is opened once per worker)
 * Both give Content-Length, so the server frames nothing and copies nothing
 * it need not.  Any other path: 404. */
#include "forkd.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIGFILE_MEM_SIZE (1024 * 1024)

/* Filled in init: a written buffer, not zero pages shared with nothing. */
static char bigfile_mem[BIGFILE_MEM_SIZE];

struct bigfile {
    int fd; /* -1 without the `file` option */
    off_t size;
    char length[24]; /* the file's size in decimal, for Content-Length */
};

static int
bigfile_init(const struct forkd_option *opts, size_t n_opts, void **state)
{
    const char *path = forkd_option(opts, n_opts, "file");
    struct bigfile *b = malloc(sizeof(*b));
    struct stat st;

    if (b == NULL) {
        forkd_log(NULL, FORKD_LOG_ERROR, "bigfile: out of memory");
        return -1;
    }
    for (size_t i = 0; i < sizeof(bigfile_mem); i++)
        bigfile_mem[i] = (char)('a' + i % 26);
    b->fd = -1;
    b->size = 0;
    b->length[0] = '\0';
    if (path != NULL) {
        b->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (b->fd == -1 || fstat(b->fd, &st) == -1 || !S_ISREG(st.st_mode)) {
            forkd_log(NULL, FORKD_LOG_ERROR,
                      "bigfile: file = %s: cannot open a regular file", path);
            if (b->fd != -1)
                close(b->fd);
            free(b);
            return -1;
        }
        b->size = st.st_size;
        snprintf(b->length, sizeof(b->length), "%lld", (long long)st.st_size);
    }
    *state = b;
    return 0;
}

static int
bigfile_handle(struct forkd_req *req, void *state)
{
    static const char mem_length[] = "1048576";
    const struct bigfile *b = state;
    const char *path = forkd_getenv(req, "PATH_INFO");
    struct forkd_header headers[] = {
        {"Content-Type", "application/octet-stream"},
        {"Content-Length", mem_length},
    };

    _Static_assert(BIGFILE_MEM_SIZE == 1048576, "mem_length");
    if (path != NULL && strcmp(path, "/mem") == 0) {
        if (forkd_start_response(req, "200 OK", headers, 2) == -1 ||
            forkd_write(req, bigfile_mem, sizeof(bigfile_mem)) == -1)
            return -1;
        return 0;
    }
    if (path != NULL && strcmp(path, "/file") == 0 && b->fd != -1) {
        headers[1].value = b->length;
        if (forkd_start_response(req, "200 OK", headers, 2) == -1 ||
            forkd_sendfile(req, b->fd, 0, (size_t)b->size) == -1)
            return -1;
        return 0;
    }
    headers[0].value = "text/plain";
    headers[1].value = "10";
    if (forkd_start_response(req, "404 Not Found", headers, 2) == -1 ||
        forkd_write(req, "not found\n", 10) == -1)
        return -1;
    return 0;
}

static void
bigfile_fini(void *state)
{
    struct bigfile *b = state;

    if (b != NULL && b->fd != -1)
        close(b->fd);
    free(b);
}

/* The state is read-only after init, and sendfile with an explicit offset
 * leaves the shared file position alone: safe in several threads. */
const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = bigfile_init,
    .handle = bigfile_handle,
    .fini = bigfile_fini,
};
