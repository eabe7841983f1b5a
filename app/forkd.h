/* forkd.h: the handler API of forkd, the only header an application needs.
 *
 * A handler is a shared object that exports one descriptor named forkd_app.
 * Each worker process calls init once after fork, handle once per request
 * (synchronously, one call at a time per worker or per thread), and fini when
 * it exits.  The calls below mirror Python's WSGI (PEP 3333): an environ of
 * CGI-style variables, a streamed input, start_response, write and a file
 * wrapper.  See forkd.h(3).
 *
 * Build a handler with:  cc -shared -fPIC -I/path/to/forkd/app -o my.so my.c
 * The forkd_* functions are provided by the forkd executable at load time.
 */
#ifndef FORKD_H
#define FORKD_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version a handler built against this header declares.  forkd loads
 * handlers of every version from FORKD_API_MIN on: version 2 added preload
 * and atfork at the end of the descriptor, which version-1 descriptors
 * lack (forkd never reads them there). */
#define FORKD_API_VERSION 2
#define FORKD_API_MIN 1

/* The handler may run in several threads of one worker at once
 * ([server] threads > 1); without this flag forkd refuses to start it so. */
#define FORKD_APP_THREADSAFE 0x1u

/* One request in flight; owned by the server, valid only during handle. */
struct forkd_req;

/* A response header for forkd_start_response; the strings are copied. */
struct forkd_header {
    const char *name;
    const char *value;
};

/* An option from the [app] section of the ini file (every key but path),
 * in file order; valid during init only (copy what you keep). */
struct forkd_option {
    const char *key;
    const char *value;
};

/* Where a worker fork is, for forkd_app.atfork. */
enum forkd_fork_phase {
    FORKD_FORK_PREPARE, /* in the template process, just before fork */
    FORKD_FORK_PARENT,  /* in the template process, just after it */
    FORKD_FORK_CHILD    /* in the new worker, before init */
};

/* Log levels for forkd_log, as in the error log's log_level. */
enum forkd_level {
    FORKD_LOG_ERROR = 0,
    FORKD_LOG_WARN,
    FORKD_LOG_NOTICE,
    FORKD_LOG_INFO,
    FORKD_LOG_DEBUG
};

struct forkd_app {
    unsigned api_version; /* FORKD_API_VERSION */
    unsigned flags;       /* FORKD_APP_* */
    /* Once per worker after fork, before any request.  Store the worker's
     * state in *state (it starts NULL, or as preload left it); it is passed
     * to every handle and to fini.  Return 0, or -1 to refuse to start (log
     * why with forkd_log and a NULL request): the daemon then stops with an
     * error.  May be NULL. */
    int (*init)(const struct forkd_option *opts, size_t n_opts, void **state);
    /* Once per request.  Return 0 when done, -1 on error: before any body
     * byte went out the client gets a 500, after it the connection is closed
     * so the client sees a truncated response.  Required. */
    int (*handle)(struct forkd_req *req, void *state);
    /* Once at graceful worker exit.  May be NULL. */
    void (*fini)(void *state);
    /* --- since API version 2 --- */
    /* Once per generation (start-up, each HUP) in a template process that
     * has switched to the workers' user, before any worker exists: load
     * what the workers share (gunicorn's --preload).  Return 1 to have
     * every worker of this generation forked from this process: each then
     * gets init with *state as preload left it; 0 to have the workers
     * started as without preload (init with *state NULL); -1 to refuse to
     * start, as init.  May be NULL. */
    int (*preload)(const struct forkd_option *opts, size_t n_opts,
                   void **state);
    /* Around each fork of a worker from the template (only after preload
     * returned 1): what a runtime must do about fork (CPython's
     * PyOS_BeforeFork and friends).  May be NULL. */
    void (*atfork)(enum forkd_fork_phase phase, void *state);
};

/* The descriptor every handler exports:
 *   const struct forkd_app forkd_app = { .api_version = FORKD_API_VERSION,
 *                                        .handle = my_handle };
 */
extern const struct forkd_app forkd_app;

/* --- environ ----------------------------------------------------------- */

/* The value of one environ variable (REQUEST_METHOD, PATH_INFO, HTTP_HOST,
 * wsgi.url_scheme, ...) as a NUL-terminated string valid until handle
 * returns, or NULL when the request has no such variable. */
const char *forkd_getenv(struct forkd_req *req, const char *name);

/* Iterate over every environ variable: start with *iter = 0; each call
 * stores the next name and value and returns 1, then 0 at the end. */
int forkd_environ_next(struct forkd_req *req, size_t *iter, const char **name,
                       const char **value);

/* The value of an [app] option passed to init, or NULL. */
const char *forkd_option(const struct forkd_option *opts, size_t n_opts,
                         const char *key);

/* The directory that relative paths in the value of option key are taken
 * from: the ini file's directory for a key from its [app] section, the
 * directory forkd was started in for one from -o KEY=VALUE (the last
 * occurrence wins, as in forkd_option).  NULL when there is no such key or
 * opts is not what forkd passed to the running preload or init: call it
 * there only.  Since API version 2. */
const char *forkd_option_dir(const struct forkd_option *opts, size_t n_opts,
                             const char *key);

/* --- input ------------------------------------------------------------- */

/* Read up to n bytes of the request body (de-chunked).  Returns the count,
 * 0 at the end of the body, -1 when the client went away, timed out or sent
 * a malformed body.  The first call sends "100 Continue" if the client asked
 * for it. */
ssize_t forkd_read(struct forkd_req *req, void *buf, size_t n);

/* --- output ------------------------------------------------------------ */

/* Set the status ("200 OK") and headers of the response.  May be called
 * again before the first body byte is sent, replacing both (WSGI's exc_info
 * case).  Returns 0, or -1 if the status or a header is invalid (CR, LF or
 * NUL, a name that is not a token, a hop-by-hop header such as Connection or
 * Transfer-Encoding) or the head was already sent; the request then ends
 * with a 500 if nothing was sent yet. */
int forkd_start_response(struct forkd_req *req, const char *status,
                         const struct forkd_header *headers, size_t n);

/* Append n bytes to the response body.  Returns n, or -1 (no
 * start_response yet, client gone, send timeout, more bytes than a
 * Content-Length the handler gave).  Small bodies are buffered and sent
 * with the head when handle returns; forkd frames the body with
 * Content-Length when it knows it, else chunked (HTTP/1.1) or by closing
 * the connection (HTTP/1.0). */
ssize_t forkd_write(struct forkd_req *req, const void *buf, size_t n);

/* Send n bytes of the open file fd from offset off as body (WSGI's
 * file_wrapper), with sendfile(2) where possible.  The caller keeps fd.
 * Returns n or -1 as forkd_write. */
ssize_t forkd_sendfile(struct forkd_req *req, int fd, off_t off, size_t n);

/* --- services ---------------------------------------------------------- */

/* Memory from the request's arena, aligned for any type, released after
 * the response: no free() needed.  NULL if out of memory. */
void *forkd_alloc(struct forkd_req *req, size_t n);

/* Write one line to the error log at level, with the request's method and
 * path (WSGI's wsgi.errors).  req may be NULL (in init and fini). */
void forkd_log(struct forkd_req *req, enum forkd_level level, const char *fmt,
               ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
