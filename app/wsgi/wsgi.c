/* wsgi: serves a Python WSGI application (PEP 3333) by embedding CPython:
 * one interpreter per worker, one thread state per handler thread for its
 * whole life, the GIL dropped around every call into forkd that can block.
 * This file: the descriptor (init, handle, fini), the environ, logging.
 * See forkd-wsgi(8). */
#include "wsgi.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CGI variables every request (or most) has: their keys are interned once
 * and the last value of each is reused while requests repeat it. */
enum { WSGI_K_METHOD, WSGI_K_URI, WSGI_K_MULTITHREAD, WSGI_K_MULTIPROCESS };

const char *const wsgi_known[] = {
    [WSGI_K_METHOD] = "REQUEST_METHOD",
    [WSGI_K_URI] = "REQUEST_URI",
    [WSGI_K_MULTITHREAD] = "wsgi.multithread",
    [WSGI_K_MULTIPROCESS] = "wsgi.multiprocess",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_PROTOCOL",
    "SERVER_NAME",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "wsgi.url_scheme",
    "forkd.worker_pid",
    "HTTP_HOST",
    "HTTP_USER_AGENT",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_CONNECTION",
    "HTTP_COOKIE",
    "HTTP_REFERER",
    "HTTP_CACHE_CONTROL",
    "HTTP_ORIGIN",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_REAL_IP",
    "HTTP_EXPECT",
};

_Static_assert(sizeof(wsgi_known) / sizeof(wsgi_known[0]) == WSGI_N_KNOWN,
               "WSGI_N_KNOWN");

/* Invariant: a handler thread keeps one Python thread state from its first
 * request to its end, so thread-locals of the app (threading.local,
 * contextvars) and PyGILState_Ensure in C extensions see one thread, as
 * under gunicorn's gthread.  Created lazily: forkd starts its handler
 * threads after init. */
static _Thread_local PyThreadState *wsgi_ts;

/* --- exceptions and logging ------------------------------------------ */

/* The pending exception, normalized and with its traceback; cleared.
 * NULL if none. */
PyObject *
wsgi_fetch(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Log text one line per log line, the last line as "wsgi: WHAT: LAST":
 * a traceback ends with the exception's type and message. */
static void
wsgi_log_lines(struct forkd_req *req, const char *what, const char *text)
{
    const char *p = text, *last = "", *end;
    int last_len = 0;

    while (*p != '\0') {
        end = strchr(p, '\n');
        if (end == NULL)
            end = p + strlen(p);
        if (end > p && last_len > 0)
            forkd_log(req, FORKD_LOG_ERROR, "wsgi: %.*s", last_len, last);
        if (end > p) {
            last = p;
            last_len = (int)(end - p);
        }
        p = *end != '\0' ? end + 1 : end;
    }
    forkd_log(req, FORKD_LOG_ERROR, "wsgi: %s: %.*s", what, last_len, last);
}

/* Log exc (may be NULL) with its traceback as wsgi_log_lines does. */
void
wsgi_log_exc(struct wsgi *w, struct forkd_req *req, const char *what,
             PyObject *exc)
{
    PyObject *lines = NULL, *text = NULL, *sep = NULL;
    const char *s = NULL;

    if (exc != NULL && w->format_exc != NULL &&
        (lines = PyObject_CallOneArg(w->format_exc, exc)) != NULL &&
        (sep = PyUnicode_FromStringAndSize("", 0)) != NULL &&
        (text = PyUnicode_Join(sep, lines)) != NULL)
        s = PyUnicode_AsUTF8(text);
    if (s != NULL) {
        wsgi_log_lines(req, what, s);
    } else {
        PyErr_Clear();
        forkd_log(req, FORKD_LOG_ERROR,
                  "wsgi: %s (the exception cannot be formatted)", what);
    }
    Py_XDECREF(lines);
    Py_XDECREF(sep);
    Py_XDECREF(text);
}

/* Log the pending exception during init: the traceback, then one line
 * "wsgi: KEY = VALUE: WHAT: LAST". */
void
wsgi_init_error(struct wsgi *w, const char *key, const char *value,
                const char *what)
{
    PyObject *exc = wsgi_fetch();
    char head[1024];

    snprintf(head, sizeof(head), "%s = %s: %s", key, value, what);
    wsgi_log_exc(w, NULL, head, exc);
    Py_XDECREF(exc);
}

/* --- the environ --------------------------------------------------------- */

static size_t
wsgi_key_index(const char *name)
{
    for (size_t i = 0; i < WSGI_N_KNOWN; i++)
        if (name[0] == wsgi_known[i][0] && strcmp(name, wsgi_known[i]) == 0)
            return i;
    return WSGI_N_KNOWN;
}

/* A new reference to value as a str, the previous one if it repeats. */
static PyObject *
wsgi_key_value(struct wsgi_key *k, const char *value)
{
    size_t len = strlen(value);
    PyObject *v = k->last;

    if (v != NULL && (size_t)PyUnicode_GET_LENGTH(v) == len &&
        memcmp(PyUnicode_1BYTE_DATA(v), value, len) == 0) {
        Py_INCREF(v);
        return v;
    }
    if ((v = PyUnicode_DecodeLatin1(value, (Py_ssize_t)len, NULL)) == NULL)
        return NULL;
    Py_INCREF(v);
    Py_XSETREF(k->last, v);
    return v;
}

static int
wsgi_environ_put(struct wsgi_call *c, PyObject *env, const char *name,
                 const char *value)
{
    size_t i = wsgi_key_index(name);
    struct wsgi_key *k = &c->w->keys[i];
    PyObject *key, *val;
    int rc = -1;

    if (i == WSGI_K_MULTITHREAD || i == WSGI_K_MULTIPROCESS)
        return PyDict_SetItem(env, k->key,
                              strcmp(value, "true") == 0 ? Py_True : Py_False);
    if (i == WSGI_K_METHOD)
        c->method = value;
    else if (i == WSGI_K_URI)
        c->uri = value;
    if (i < WSGI_N_KNOWN) {
        key = k->key;
        Py_INCREF(key);
        val = wsgi_key_value(k, value);
    } else {
        key = PyUnicode_DecodeLatin1(name, (Py_ssize_t)strlen(name), NULL);
        val = PyUnicode_DecodeLatin1(value, (Py_ssize_t)strlen(value), NULL);
    }
    if (key != NULL && val != NULL)
        rc = PyDict_SetItem(env, key, val);
    Py_XDECREF(key);
    Py_XDECREF(val);
    return rc;
}

/* The environ: a copy of the template, then forkd's variables. */
static PyObject *
wsgi_environ(struct wsgi_call *c, PyObject *input, PyObject *errors)
{
    PyObject *env = PyDict_Copy(c->w->template);
    const char *name, *value;
    size_t iter = 0;

    if (env == NULL)
        return NULL;
    while (forkd_environ_next(c->req, &iter, &name, &value) == 1)
        if (wsgi_environ_put(c, env, name, value) < 0)
            goto fail;
    if (PyDict_SetItem(env, c->w->k_input, input) < 0 ||
        PyDict_SetItem(env, c->w->k_errors, errors) < 0)
        goto fail;
    return env;
fail:
    Py_DECREF(env);
    return NULL;
}

/* --- a request ----------------------------------------------------------- */

static struct wsgi_call *
wsgi_call_new(struct wsgi *w, struct forkd_req *req)
{
    struct wsgi_call *c = PyObject_New(struct wsgi_call, &wsgi_call_type);

    if (c == NULL)
        return NULL;
    memset(&c->req, 0, sizeof(*c) - offsetof(struct wsgi_call, req));
    c->req = req;
    c->w = w;
    c->thread = pthread_self();
    c->method = c->uri = "?";
    c->length = -1;
    return c;
}

/* Run the app on one request, with the GIL held. */
static int
wsgi_serve(struct wsgi *w, struct forkd_req *req)
{
    struct wsgi_call *c = wsgi_call_new(w, req);
    PyObject *input = NULL, *errors = NULL, *env = NULL, *result = NULL;
    PyObject *args[2];
    int rc = -1;

    if (c == NULL || (input = wsgi_input_new(c)) == NULL ||
        (errors = wsgi_errors_new(c)) == NULL ||
        (env = wsgi_environ(c, input, errors)) == NULL) {
        PyObject *exc = wsgi_fetch();
        wsgi_log_exc(w, req, "cannot build the environ", exc);
        Py_XDECREF(exc);
        goto out;
    }
    args[0] = env;
    args[1] = (PyObject *)c;
    if ((result = PyObject_Vectorcall(w->app, args, 2, NULL)) == NULL)
        wsgi_raised(c, "the app raised");
    else
        wsgi_respond(c, result);
    rc = wsgi_finish(c);
out:
    if (errors != NULL)
        wsgi_errors_end(errors);
    if (c != NULL) {
        c->req = NULL; /* what the app kept of the request refuses now */
        Py_CLEAR(c->mistake_exc); /* its traceback may refer to c */
    }
    Py_XDECREF(result);
    Py_XDECREF(env);
    Py_XDECREF(errors);
    Py_XDECREF(input);
    Py_XDECREF((PyObject *)c);
    return rc;
}

static int
wsgi_handle(struct forkd_req *req, void *state)
{
    struct wsgi *w = state;
    int rc;

    if (wsgi_ts == NULL && (wsgi_ts = PyThreadState_New(w->interp)) == NULL) {
        forkd_log(req, FORKD_LOG_ERROR,
                  "wsgi: out of memory for a Python thread state");
        return -1;
    }
    PyEval_RestoreThread(wsgi_ts);
    rc = wsgi_serve(w, req);
    (void)PyEval_SaveThread(); /* wsgi_ts, kept for the next request */
    return rc;
}

/* --- init and fini ---------------------------------------------------- */

/* Python started and the app imported, the GIL held.  NULL, logged (a
 * failed start ends the process at once: nothing of Python is torn down
 * on the way out). */
static struct wsgi *
wsgi_load(const struct forkd_option *opts, size_t n_opts)
{
    struct wsgi *w;

    if (Py_IsInitialized()) {
        forkd_log(NULL, FORKD_LOG_ERROR,
                  "wsgi: Python is already running in this process");
        return NULL;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        forkd_log(NULL, FORKD_LOG_ERROR, "wsgi: out of memory");
        return NULL;
    }
    wsgi_pin();
    if (wsgi_start_python() < 0 || wsgi_setup(w, opts, n_opts) < 0)
        return NULL;
    w->interp = PyInterpreterState_Get();
    return w;
}

/* preload = yes: the app is imported once, in forkd's template process,
 * and every worker is forked from it.  The collector's objects so far are
 * frozen, so that no collection in a worker writes to (and so copies) the
 * pages they share.  The GIL stays held: each fork happens with it, as
 * PyOS_BeforeFork wants. */
static int
wsgi_preload(const struct forkd_option *opts, size_t n_opts, void **state)
{
    struct wsgi *w;
    int yes;

    if (wsgi_check_options(opts, n_opts) < 0 ||
        (yes = wsgi_preload_wanted(opts, n_opts)) < 0)
        return -1;
    if (!yes)
        return 0;
    if ((w = wsgi_load(opts, n_opts)) == NULL || wsgi_freeze(w) < 0)
        return -1;
    *state = w;
    return 1;
}

/* The fork hooks CPython documents for embedders that fork. */
static void
wsgi_atfork(enum forkd_fork_phase phase, void *state)
{
    (void)state;
    if (phase == FORKD_FORK_PREPARE)
        PyOS_BeforeFork();
    else if (phase == FORKD_FORK_PARENT)
        PyOS_AfterFork_Parent();
    else
        PyOS_AfterFork_Child();
}

static int
wsgi_init(const struct forkd_option *opts, size_t n_opts, void **state)
{
    struct wsgi *w = *state; /* preloaded, or NULL */

    if (w == NULL && (wsgi_check_options(opts, n_opts) < 0 ||
                      (w = wsgi_load(opts, n_opts)) == NULL))
        return -1;
    /* Drop the GIL: from here on each handler thread takes it with its
     * own thread state, this thread with the one Python started with. */
    w->main_ts = wsgi_ts = PyEval_SaveThread();
    *state = w;
    return 0;
}

/* Graceful exit: the app's atexit functions run, buffered output is
 * flushed, and what CPython can free is freed. */
static void
wsgi_fini(void *state)
{
    struct wsgi *w = state;

    if (w == NULL)
        return;
    if (wsgi_ts == NULL)
        wsgi_ts = PyThreadState_New(w->interp);
    PyEval_RestoreThread(wsgi_ts);
    Py_CLEAR(w->app);
    Py_CLEAR(w->template);
    Py_CLEAR(w->format_exc);
    Py_CLEAR(w->k_input);
    Py_CLEAR(w->k_errors);
    for (size_t i = 0; i < WSGI_N_KNOWN; i++) {
        Py_CLEAR(w->keys[i].key);
        Py_CLEAR(w->keys[i].last);
    }
    if (Py_FinalizeEx() < 0)
        forkd_log(NULL, FORKD_LOG_WARN,
                  "wsgi: Python's exit failed: buffered output may be lost");
    wsgi_ts = NULL;
    free(w);
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = wsgi_init,
    .handle = wsgi_handle,
    .fini = wsgi_fini,
    .preload = wsgi_preload,
    .atfork = wsgi_atfork,
};
