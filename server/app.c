#include "app.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cfg.h"
#include "environ.h"
#include "log.h"
#include "req.h"

int
app_open(struct app *a, const char *path, unsigned threads,
         char err[APP_ERR_MAX])
{
    memset(a, 0, sizeof(*a));
    /* RTLD_NOW: an unresolved symbol is a start-up error, not a crash in
     * the middle of a request. */
    a->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (a->dl == NULL) {
        snprintf(err, APP_ERR_MAX, "cannot load: %s", dlerror());
        return -1;
    }
    a->desc = dlsym(a->dl, "forkd_app");
    if (a->desc == NULL) {
        snprintf(err, APP_ERR_MAX,
                 "no forkd_app descriptor (is it a forkd handler?)");
    } else if (a->desc->api_version < FORKD_API_MIN ||
               a->desc->api_version > FORKD_API_VERSION) {
        snprintf(err, APP_ERR_MAX,
                 "built for handler API version %u, this forkd loads %u to "
                 "%u: rebuild it against this forkd.h",
                 a->desc->api_version, FORKD_API_MIN, FORKD_API_VERSION);
    } else if (a->desc->handle == NULL) {
        snprintf(err, APP_ERR_MAX, "forkd_app.handle is NULL");
    } else if (threads > 1 && !(a->desc->flags & FORKD_APP_THREADSAFE)) {
        snprintf(err, APP_ERR_MAX,
                 "threads = %u but the handler does not declare "
                 "FORKD_APP_THREADSAFE",
                 threads);
    } else if ((a->path = strdup(path)) != NULL) {
        return 0;
    } else {
        snprintf(err, APP_ERR_MAX, "out of memory");
    }
    app_close(a);
    return -1;
}

int
app_set_path(struct app *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    return (a->path = strdup(path)) != NULL ? 0 : -1;
}

int
app_has_preload(const struct app *a)
{
    /* A version-1 descriptor ends before preload: never read it there. */
    return a->desc->api_version >= 2 && a->desc->preload != NULL;
}

/* The options preload or init is running with, for forkd_option_dir. */
static const struct cfg *app_opts_cfg;

int
app_preload(struct app *a, const struct cfg *c)
{
    int rc;

    a->state = NULL;
    if (!app_has_preload(a))
        return 0;
    app_opts_cfg = c;
    rc = a->desc->preload(c->opts, c->n_opts, &a->state);
    app_opts_cfg = NULL;
    if (rc != 1)
        a->state = NULL; /* a handler that preloads nothing keeps nothing */
    return rc < 0 ? -1 : rc;
}

void
app_atfork(struct app *a, enum forkd_fork_phase phase)
{
    if (a->desc->api_version >= 2 && a->desc->atfork != NULL)
        a->desc->atfork(phase, a->state);
}

int
app_init(struct app *a, const struct cfg *c)
{
    int rc = 0;

    app_opts_cfg = c;
    if (a->desc->init != NULL)
        rc = a->desc->init(c->opts, c->n_opts, &a->state);
    app_opts_cfg = NULL;
    if (rc != 0)
        return -1;
    a->initialized = 1;
    return 0;
}

void
app_fini(struct app *a)
{
    if (a->initialized && a->desc->fini)
        a->desc->fini(a->state);
    a->initialized = 0;
    a->state = NULL;
}

void
app_close(struct app *a)
{
    if (a->dl)
        dlclose(a->dl);
    free(a->path);
    memset(a, 0, sizeof(*a));
}

const char *
forkd_option(const struct forkd_option *opts, size_t n_opts, const char *key)
{
    const char *found = NULL;

    /* The last occurrence wins, as for the server's own keys. */
    for (size_t i = 0; opts && key && i < n_opts; i++)
        if (strcmp(opts[i].key, key) == 0)
            found = opts[i].value;
    return found;
}

const char *
forkd_option_dir(const struct forkd_option *opts, size_t n_opts,
                 const char *key)
{
    const struct cfg *c = app_opts_cfg;
    const char *found = NULL;

    /* Only the array forkd passed to the running preload or init. */
    if (c == NULL || opts != c->opts || n_opts != c->n_opts || key == NULL)
        return NULL;
    for (size_t i = 0; i < n_opts; i++)
        if (strcmp(opts[i].key, key) == 0)
            found = c->opt_dirs[i];
    return found;
}

void *
forkd_alloc(struct forkd_req *req, size_t n)
{
    return arena_alloc(&req->arena, n);
}

void
forkd_log(struct forkd_req *req, enum forkd_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!log_is_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* The request id ties the line to the access log's (json) and to the
     * proxy's logs. */
    if (req)
        log_msg(level, "app: %s %s: %s, request_id: %s", req->head.method,
                req->head.target, msg, environ_request_id(req, 1));
    else
        log_msg(level, "app: %s", msg);
}
