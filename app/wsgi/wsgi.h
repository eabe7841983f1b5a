/* wsgi: the handler that serves a Python WSGI application (PEP 3333) by
 * embedding CPython; this header is shared by its files only:
 *   wsgi.c      the descriptor: init, handle, fini; the environ; logging
 *   setup.c     init's work: Python, sys.path, importing the app
 *   response.c  start_response, write, the result and its close()
 *   stream.c    wsgi.input, wsgi.errors, wsgi.file_wrapper
 * See forkd-wsgi(8). */
#ifndef WSGI_H
#define WSGI_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "forkd.h"

#include <pthread.h>
#include <sys/types.h>

/* Only forkd_app leaves the shared object (forkd.h(3), Linking). */
#pragma GCC visibility push(hidden)

#define WSGI_N_KNOWN 30      /* entries of wsgi_known in wsgi.c */
#define WSGI_MISTAKE_MAX 256 /* the text of one mistake */

struct wsgi_key {
    PyObject *key;  /* interned name */
    PyObject *last; /* the value seen last (a latin-1 str), or NULL */
};

/* A worker's state; every PyObject is owned and used with the GIL held. */
struct wsgi {
    PyObject *app;
    PyObject *template;   /* the constant entries of every environ */
    PyObject *format_exc; /* traceback.format_exception */
    PyObject *k_input;
    PyObject *k_errors;
    PyInterpreterState *interp;
    PyThreadState *main_ts; /* the thread state of init's thread */
    struct wsgi_key keys[WSGI_N_KNOWN];
};

/* How a request went wrong; the first error wins. */
enum wsgi_err {
    WSGI_E_NONE,
    WSGI_E_MISTAKE, /* the app broke a rule of PEP 3333: one log line */
    WSGI_E_EXC,     /* the app raised: its traceback is logged */
    WSGI_E_SILENT   /* the client went away, or forkd refused and logged */
};

/* One request: the start_response callable, and what wsgi.input,
 * wsgi.errors and write() need.  The app may keep any of them past the
 * request: req is NULL then, and they refuse to work. */
struct wsgi_call {
    PyObject_HEAD struct forkd_req *req;
    struct wsgi *w;
    pthread_t thread;   /* the handler thread: the only one that may use req */
    const char *method; /* forkd's strings, valid while req is */
    const char *uri;
    PyObject *status;        /* str, of the last valid start_response */
    PyObject *headers;       /* tuple of (str, str) tuples, ditto */
    struct forkd_header *hs; /* n_hs + 1 in the arena, into headers' strs */
    size_t n_hs;
    long long length;      /* the app's Content-Length, or -1 */
    PyObject *mistake_exc; /* the exception raised for mistake, or NULL */
    enum wsgi_err err;
    unsigned started : 1;      /* start_response succeeded */
    unsigned committed : 1;    /* forkd_start_response was called */
    unsigned body_started : 1; /* a body byte went to forkd: "headers sent" */
    unsigned gone : 1;         /* forkd_read or forkd_write failed */
    char length_buf[24];
    char mistake[WSGI_MISTAKE_MAX];
};

/* wsgi.file_wrapper(filelike, block_size) */
struct wsgi_file {
    PyObject_HEAD PyObject *filelike; /* owned */
    Py_ssize_t blksize;
};

extern PyTypeObject wsgi_call_type;    /* start_response; response.c */
extern PyTypeObject wsgi_input_type;   /* stream.c */
extern PyTypeObject wsgi_errors_type;  /* stream.c */
extern PyTypeObject wsgi_file_type;    /* stream.c */
extern const char *const wsgi_known[]; /* wsgi.c: WSGI_N_KNOWN names */

/* --- wsgi.c ---------------------------------------------------------- */

/* The pending exception, normalized, with its traceback; cleared.  A new
 * reference, or NULL if none was pending. */
PyObject *wsgi_fetch(void);

/* Log exc (may be NULL) and its traceback, one log line per line, the
 * last as "wsgi: WHAT: Type: message".  req may be NULL (init). */
void wsgi_log_exc(struct wsgi *w, struct forkd_req *req, const char *what,
                  PyObject *exc);

/* Log the pending exception of init as one line "wsgi: KEY = VALUE: WHAT:
 * Type: message" after its traceback; clears it. */
void wsgi_init_error(struct wsgi *w, const char *key, const char *value,
                     const char *what);

/* --- setup.c ---------------------------------------------------------- */

/* 0 if the [app] options are known and module is given; else -1, logged. */
int wsgi_check_options(const struct forkd_option *opts, size_t n);

/* preload = yes|no (absent: no): 1 or 0; -1 logged for anything else. */
int wsgi_preload_wanted(const struct forkd_option *opts, size_t n);

/* gc.collect() then gc.freeze(), before the workers are forked.  0 or -1,
 * logged. */
int wsgi_freeze(struct wsgi *w);

/* Make libpython's symbols global and keep it and this handler mapped. */
void wsgi_pin(void);

/* Py_InitializeFromConfig without Python's signal handlers.  0 or -1,
 * logged.  The GIL is held after it. */
int wsgi_start_python(void);

/* Types, environ template, sys.path, the app into *w.  0 or -1, logged. */
int wsgi_setup(struct wsgi *w, const struct forkd_option *opts, size_t n);

/* --- response.c -------------------------------------------------------- */

/* 0 if c's request may be used from this thread now, else -1 with an
 * exception set naming what. */
int wsgi_call_check(struct wsgi_call *c, const char *what);

/* The app (or its iterator, or close) raised: log it as what with its
 * traceback unless it is c's own mistake or the client's fault. */
void wsgi_raised(struct wsgi_call *c, const char *what);

/* Send the result of the app: iterate it (file_wrapper: sendfile), then
 * call its close(), then hand forkd an empty body's head if need be. */
void wsgi_respond(struct wsgi_call *c, PyObject *result);

/* handle's return value once the app is done; logs a mistake and sends
 * a 500 if nothing was sent yet. */
int wsgi_finish(struct wsgi_call *c);

/* --- stream.c ---------------------------------------------------------- */

/* wsgi.input and wsgi.errors of request c (they keep a reference). */
PyObject *wsgi_input_new(struct wsgi_call *c);
PyObject *wsgi_errors_new(struct wsgi_call *c);

/* Log what errors holds of an unfinished line. */
void wsgi_errors_end(PyObject *errors);

#pragma GCC visibility pop

#endif
