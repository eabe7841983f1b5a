/* wsgi/response.c: start_response, write, and the app's result: iterated
 * (or sent with sendfile for a file_wrapper), then closed; the mistakes of
 * the app and the 500 that answers them. */
#include "wsgi.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WSGI_STATUS_MAX 256 /* forkd's limit on a status line */

static PyObject *wsgi_write(PyObject *self, PyObject *data);

/* --- the request: errors and mistakes --------------------------------- */

/* 0 if the request may be used from here, else -1 with an exception. */
int
wsgi_call_check(struct wsgi_call *c, const char *what)
{
    if (c->req == NULL) {
        PyErr_Format(PyExc_ValueError, "%s: the request is over", what);
        return -1;
    }
    if (!pthread_equal(c->thread, pthread_self())) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: only the thread serving the request may use it",
                     what);
        return -1;
    }
    return 0;
}

static void
wsgi_fail(struct wsgi_call *c, enum wsgi_err err)
{
    if (c->err == WSGI_E_NONE)
        c->err = err;
}

/* Record a mistake of the app, logged as one line when the request ends. */
static void
wsgi_mistake(struct wsgi_call *c, const char *fmt, ...)
{
    va_list ap;

    if (c->err != WSGI_E_NONE)
        return;
    va_start(ap, fmt);
    vsnprintf(c->mistake, sizeof(c->mistake), fmt, ap);
    va_end(ap);
    c->err = WSGI_E_MISTAKE;
}

/* Raise a mistake in the app as type; returns NULL.  The app may still
 * recover (a valid start_response clears it); if this very exception
 * escapes the app, the mistake is logged as one line, not a traceback. */
static PyObject *
wsgi_raise(struct wsgi_call *c, PyObject *type, const char *fmt, ...)
{
    PyObject *exc;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->mistake, sizeof(c->mistake), fmt, ap);
    va_end(ap);
    exc = PyObject_CallFunction(type, "s", c->mistake);
    if (exc != NULL) {
        PyErr_SetObject(type, exc);
        Py_XSETREF(c->mistake_exc, exc);
    }
    return NULL;
}

/* The app (or its iterator, or close) raised: classify and log. */
void
wsgi_raised(struct wsgi_call *c, const char *what)
{
    PyObject *exc = wsgi_fetch();

    if (exc != NULL && exc == c->mistake_exc) {
        wsgi_fail(c, WSGI_E_MISTAKE);
    } else if (c->gone) {
        /* The client's fault: forkd answers 400/408/413 and logs it. */
        wsgi_fail(c, WSGI_E_SILENT);
    } else {
        wsgi_log_exc(c->w, c->req, what, exc);
        wsgi_fail(c, WSGI_E_EXC);
    }
    Py_XDECREF(exc);
}

/* --- the response ------------------------------------------------------ */

static int
wsgi_is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* NULL if s is a valid header name (or value), else what is wrong. */
static const char *
wsgi_bad_field(PyObject *s, int is_name)
{
    const unsigned char *p;
    Py_ssize_t n;

    if (!PyUnicode_Check(s))
        return "is not a str";
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) {
        PyErr_Clear();
        return "is not a str";
    }
#endif
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND)
        return "is not latin-1";
    p = PyUnicode_1BYTE_DATA(s);
    n = PyUnicode_GET_LENGTH(s);
    if (is_name && n == 0)
        return "is empty";
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_name && !wsgi_is_tchar(p[i]))
            return "is not an HTTP token";
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return "has a control character";
    }
    return NULL;
}

static int
wsgi_is_hop_by_hop(const char *name)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
        "TE",         "Trailer",    "Trailers",           "Transfer-Encoding",
        "Upgrade"};

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strcasecmp(name, hop[i]) == 0)
            return 1;
    return 0;
}

/* The value of a Content-Length header, or -1 if not decimal digits. */
static long long
wsgi_parse_length(const char *v)
{
    long long n = 0;

    if (*v == '\0' || strlen(v) > 18)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        n = n * 10 + (*v - '0');
    }
    return n;
}

/* Check status as forkd will ("200 OK": a code 200..599, a space, a
 * reason); 0, or -1 with the mistake raised. */
static int
wsgi_check_status(struct wsgi_call *c, PyObject *status)
{
    const char *why = wsgi_bad_field(status, 0);
    const char *s;

    if (why != NULL) {
        wsgi_raise(c,
                   PyUnicode_Check(status) ? PyExc_ValueError : PyExc_TypeError,
                   "start_response(): the status %s", why);
        return -1;
    }
    s = (const char *)PyUnicode_1BYTE_DATA(status);
    if (PyUnicode_GET_LENGTH(status) < 4 ||
        PyUnicode_GET_LENGTH(status) > WSGI_STATUS_MAX || s[0] < '2' ||
        s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
        s[3] != ' ') {
        /* Only an ASCII status is quoted: the text goes to a UTF-8 log. */
        wsgi_raise(c, PyExc_ValueError,
                   "start_response(): invalid status \"%.40s\": want a code "
                   "200..599, a space and a reason, as \"200 OK\"",
                   PyUnicode_IS_ASCII(status) ? s : "(not ASCII)");
        return -1;
    }
    return 0;
}

/* Check one (name, value) header i into *h; *length gets a Content-Length.
 * 0, or -1 with the mistake raised. */
static int
wsgi_check_header(struct wsgi_call *c, PyObject *item, Py_ssize_t i,
                  struct forkd_header *h, long long *length)
{
    const char *why;

    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        wsgi_raise(c, PyExc_TypeError,
                   "start_response(): header %zd is a %s, not a (name, value) "
                   "tuple",
                   i, Py_TYPE(item)->tp_name);
        return -1;
    }
    if ((why = wsgi_bad_field(PyTuple_GET_ITEM(item, 0), 1)) != NULL) {
        wsgi_raise(c, PyExc_ValueError, "start_response(): header %zd: name %s",
                   i, why);
        return -1;
    }
    h->name = (const char *)PyUnicode_1BYTE_DATA(PyTuple_GET_ITEM(item, 0));
    if ((why = wsgi_bad_field(PyTuple_GET_ITEM(item, 1), 0)) != NULL) {
        wsgi_raise(c, PyExc_ValueError, "start_response(): header %s: value %s",
                   h->name, why);
        return -1;
    }
    h->value = (const char *)PyUnicode_1BYTE_DATA(PyTuple_GET_ITEM(item, 1));
    if (wsgi_is_hop_by_hop(h->name)) {
        wsgi_raise(c, PyExc_ValueError,
                   "start_response(): header %s is hop-by-hop: only the "
                   "server may send it",
                   h->name);
        return -1;
    }
    if (strcasecmp(h->name, "Content-Length") == 0) {
        if (*length >= 0 || (*length = wsgi_parse_length(h->value)) < 0) {
            wsgi_raise(c, PyExc_ValueError,
                       "start_response(): Content-Length given twice or not "
                       "a number");
            return -1;
        }
    }
    return 0;
}

/* Validate headers (a list) into a new tuple and *hs (arena, one entry
 * spare for Content-Length).  The tuple or NULL with the mistake raised. */
static PyObject *
wsgi_check_headers(struct wsgi_call *c, PyObject *headers,
                   struct forkd_header **hs, long long *length)
{
    PyObject *t;
    Py_ssize_t n;

    if (!PyList_Check(headers))
        return wsgi_raise(c, PyExc_TypeError,
                          "start_response(): the headers are a %s, not a list "
                          "of (name, value) tuples",
                          Py_TYPE(headers)->tp_name);
    if ((t = PyList_AsTuple(headers)) == NULL)
        return NULL;
    n = PyTuple_GET_SIZE(t);
    if ((*hs = forkd_alloc(c->req, sizeof(**hs) * ((size_t)n + 1))) == NULL) {
        Py_DECREF(t);
        return PyErr_NoMemory();
    }
    *length = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (wsgi_check_header(c, PyTuple_GET_ITEM(t, i), i, &(*hs)[i], length) <
            0) {
            Py_DECREF(t);
            return NULL;
        }
    }
    return t;
}

static PyObject *
wsgi_reraise(PyObject *exc_info)
{
    PyObject *type, *value, *tb;

    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "start_response(): exc_info must be a 3-tuple, as "
                        "sys.exc_info() returns");
        return NULL;
    }
    type = PyTuple_GET_ITEM(exc_info, 0);
    value = PyTuple_GET_ITEM(exc_info, 1);
    tb = PyTuple_GET_ITEM(exc_info, 2);
    if (tb == Py_None)
        tb = NULL;
    Py_INCREF(type);
    Py_INCREF(value);
    Py_XINCREF(tb);
    PyErr_Restore(type, value, tb);
    return NULL;
}

static PyMethodDef wsgi_write_def = {
    "write", wsgi_write, METH_O,
    "write(data): send bytes as response body (PEP 3333's write callable)."};

/* start_response(status, response_headers, exc_info=None) -> write.  The
 * head goes to forkd only with the first body byte (wsgi_commit), so that
 * exc_info can still replace it until then. */
static PyObject *
wsgi_start_response(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"status", "response_headers", "exc_info", NULL};
    struct wsgi_call *c = (struct wsgi_call *)self;
    PyObject *status, *headers, *exc_info = Py_None, *t;
    struct forkd_header *hs;
    long long length = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:start_response", kwlist,
                                     &status, &headers, &exc_info) ||
        wsgi_call_check(c, "start_response()") < 0)
        return NULL;
    if (exc_info != Py_None && c->body_started)
        return wsgi_reraise(exc_info); /* PEP 3333: too late to replace */
    if (exc_info == Py_None && c->started)
        return wsgi_raise(c, PyExc_RuntimeError,
                          "start_response() called again without exc_info");
    if (wsgi_check_status(c, status) < 0 ||
        (t = wsgi_check_headers(c, headers, &hs, &length)) == NULL)
        return NULL;
    Py_INCREF(status);
    Py_XSETREF(c->status, status);
    Py_XSETREF(c->headers, t);
    c->hs = hs;
    c->n_hs = (size_t)PyTuple_GET_SIZE(t);
    c->length = length;
    c->started = 1;
    c->mistake[0] = '\0';
    Py_CLEAR(c->mistake_exc);
    return PyCFunction_New(&wsgi_write_def, self);
}

/* Hand the head to forkd (once), with a Content-Length of length if the
 * app gave none and length >= 0; body: body bytes follow.  0, or -1 with
 * c->err set. */
static int
wsgi_commit(struct wsgi_call *c, long long length, int body)
{
    size_t n = c->n_hs;

    if (c->committed)
        return 0;
    if (!c->started && c->mistake[0] != '\0') {
        wsgi_fail(c, WSGI_E_MISTAKE); /* start_response raised; ignored */
        return -1;
    }
    if (!c->started) {
        wsgi_mistake(c, body ? "the app sent body bytes before calling "
                               "start_response()"
                             : "the app returned without calling "
                               "start_response()");
        return -1;
    }
    if (length >= 0 && c->length < 0) {
        snprintf(c->length_buf, sizeof(c->length_buf), "%lld", length);
        c->hs[n].name = "Content-Length";
        c->hs[n++].value = c->length_buf;
    }
    if (forkd_start_response(c->req,
                             (const char *)PyUnicode_1BYTE_DATA(c->status),
                             c->hs, n) < 0) {
        wsgi_fail(c, WSGI_E_SILENT); /* forkd logged why */
        return -1;
    }
    c->committed = 1;
    return 0;
}

/* Send a bytes object as body, the GIL dropped.  0, or -1 with c->err. */
static int
wsgi_send(struct wsgi_call *c, PyObject *bytes, long long length)
{
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    ssize_t sent;

    if (n == 0)
        return 0;
    if (wsgi_commit(c, length, 1) < 0)
        return -1;
    c->body_started = 1;
    Py_BEGIN_ALLOW_THREADS;
    sent = forkd_write(c->req, PyBytes_AS_STRING(bytes), (size_t)n);
    Py_END_ALLOW_THREADS;
    if (sent < 0) {
        c->gone = 1;
        wsgi_fail(c, WSGI_E_SILENT);
        return -1;
    }
    return 0;
}

/* write(data): PEP 3333's imperative body output. */
static PyObject *
wsgi_write(PyObject *self, PyObject *data)
{
    struct wsgi_call *c = (struct wsgi_call *)self;

    if (wsgi_call_check(c, "write()") < 0)
        return NULL;
    if (!PyBytes_Check(data))
        return wsgi_raise(c, PyExc_TypeError, "write() takes bytes, not %s",
                          Py_TYPE(data)->tp_name);
    if (!c->started)
        return wsgi_raise(c, PyExc_RuntimeError,
                          "write() called before start_response()");
    if (c->err != WSGI_E_NONE || wsgi_send(c, data, -1) < 0) {
        PyErr_SetString(PyExc_OSError,
                        "write(): the response failed (the client went away?)");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The response of a request that failed, if nothing was sent yet. */
static int
wsgi_send_500(struct wsgi_call *c)
{
    static const struct forkd_header h[] = {{"Content-Type", "text/plain"}};
    static const char body[] = "Internal Server Error\n";
    ssize_t sent;

    if (forkd_start_response(c->req, "500 Internal Server Error", h, 1) < 0)
        return -1;
    Py_BEGIN_ALLOW_THREADS;
    sent = forkd_write(c->req, body, sizeof(body) - 1);
    Py_END_ALLOW_THREADS;
    return sent < 0 ? -1 : 0;
}

/* handle's return value once the app is done. */
int
wsgi_finish(struct wsgi_call *c)
{
    switch (c->err) {
    case WSGI_E_NONE:
        return 0;
    case WSGI_E_SILENT:
        return -1;
    case WSGI_E_MISTAKE:
        forkd_log(c->req, FORKD_LOG_ERROR, "wsgi: %s", c->mistake);
        break;
    case WSGI_E_EXC:
        break;
    }
    /* Once a body byte went out the status cannot change: forkd closes
     * the connection and the client sees a truncated response. */
    return c->body_started ? -1 : wsgi_send_500(c);
}

/* --- the result: iteration, file_wrapper, close ---------------------- */

static void
wsgi_send_item(struct wsgi_call *c, PyObject *item, long long length)
{
    if (!PyBytes_Check(item))
        wsgi_mistake(c, "the app's iterable yielded a %s, not bytes",
                     Py_TYPE(item)->tp_name);
    else
        (void)wsgi_send(c, item, length); /* sets c->err */
}

/* A list or tuple: by index, no iterator; one item gets a Content-Length. */
static void
wsgi_send_sequence(struct wsgi_call *c, PyObject *seq)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *item;

    for (Py_ssize_t i = 0; c->err == WSGI_E_NONE; i++) {
        /* Re-read the size: the GIL was dropped while sending. */
        if (i >= PySequence_Fast_GET_SIZE(seq))
            break;
        item = PySequence_Fast_GET_ITEM(seq, i);
        Py_INCREF(item);
        wsgi_send_item(c, item,
                       n == 1 && PyBytes_Check(item) ? PyBytes_GET_SIZE(item)
                                                     : -1);
        Py_DECREF(item);
    }
}

static void
wsgi_send_iter(struct wsgi_call *c, PyObject *result)
{
    PyObject *it, *item;

    if (Py_TYPE(result)->tp_iter == NULL && !PySequence_Check(result)) {
        wsgi_mistake(c, "the app returned a %s, not an iterable of bytes",
                     Py_TYPE(result)->tp_name);
        return;
    }
    if ((it = PyObject_GetIter(result)) == NULL) {
        wsgi_raised(c, "the app's iterable raised");
        return;
    }
    while (c->err == WSGI_E_NONE && (item = PyIter_Next(it)) != NULL) {
        wsgi_send_item(c, item, -1);
        Py_DECREF(item);
    }
    if (PyErr_Occurred())
        wsgi_raised(c, "the app's iterable raised");
    Py_DECREF(it);
}

/* The file of a file_wrapper result if it is a regular file: *off and *n
 * get where to start and how much to send.  -1 if it is not one. */
static int
wsgi_file_fd(struct wsgi_file *f, off_t *off, off_t *n)
{
    PyObject *pos;
    struct stat st;
    int fd = PyObject_AsFileDescriptor(f->filelike);

    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        PyErr_Clear();
        return -1;
    }
    /* tell(), not lseek: a buffered file's position is Python's. */
    if ((pos = PyObject_CallMethod(f->filelike, "tell", NULL)) != NULL) {
        *off = (off_t)PyLong_AsLongLong(pos);
        Py_DECREF(pos);
    }
    if (pos == NULL || PyErr_Occurred()) {
        PyErr_Clear();
        *off = lseek(fd, 0, SEEK_CUR);
    }
    if (*off < 0)
        return -1;
    *n = *off < st.st_size ? st.st_size - *off : 0;
    return fd;
}

/* file_wrapper on a regular file: zero copy through forkd_sendfile.
 * Returns 0 if the result was not such a file (iterate it instead). */
static int
wsgi_send_file(struct wsgi_call *c, struct wsgi_file *f)
{
    off_t off = 0, n = 0;
    ssize_t sent;
    int fd = wsgi_file_fd(f, &off, &n);

    if (fd < 0)
        return 0;
    if (c->length >= 0 && c->length < n)
        n = (off_t)c->length; /* send no more than the app announced */
    if (wsgi_commit(c, n, n > 0) < 0 || n == 0)
        return 1;
    c->body_started = 1;
    Py_BEGIN_ALLOW_THREADS;
    sent = forkd_sendfile(c->req, fd, off, (size_t)n);
    Py_END_ALLOW_THREADS;
    if (sent < 0) {
        c->gone = 1;
        wsgi_fail(c, WSGI_E_SILENT);
    }
    return 1;
}

static void
wsgi_send_result(struct wsgi_call *c, PyObject *result)
{
    if (PyUnicode_Check(result) || PyBytes_Check(result))
        wsgi_mistake(c,
                     "the app returned a %s, not an iterable of bytes (a "
                     "list of one bytes object, say)",
                     Py_TYPE(result)->tp_name);
    else if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        wsgi_send_sequence(c, result);
    else if (!Py_IS_TYPE(result, &wsgi_file_type) ||
             !wsgi_send_file(c, (struct wsgi_file *)result))
        wsgi_send_iter(c, result);
}

/* PEP 3333: close() is called whatever happened, client gone included. */
static void
wsgi_close(struct wsgi_call *c, PyObject *result)
{
    PyObject *close, *r;

    if (PyList_CheckExact(result) || PyTuple_CheckExact(result) ||
        PyUnicode_Check(result) || PyBytes_Check(result))
        return;
    if ((close = PyObject_GetAttrString(result, "close")) == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        else
            wsgi_raised(c, "the app's iterable raised");
        return;
    }
    if ((r = PyObject_CallNoArgs(close)) == NULL)
        wsgi_raised(c, "close() of the app's iterable raised");
    Py_XDECREF(r);
    Py_DECREF(close);
}

void
wsgi_respond(struct wsgi_call *c, PyObject *result)
{
    wsgi_send_result(c, result);
    wsgi_close(c, result);
    if (c->err == WSGI_E_NONE)
        (void)wsgi_commit(c, -1, 0); /* an empty body: the head alone */
}

/* --- start_response ------------------------------------------------------ */

static void
wsgi_call_dealloc(PyObject *self)
{
    struct wsgi_call *c = (struct wsgi_call *)self;

    Py_XDECREF(c->status);
    Py_XDECREF(c->headers);
    Py_XDECREF(c->mistake_exc);
    PyObject_Free(self);
}

PyTypeObject wsgi_call_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "forkd.StartResponse",
    .tp_basicsize = sizeof(struct wsgi_call),
    .tp_dealloc = wsgi_call_dealloc,
    .tp_call = wsgi_start_response,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "start_response(status, response_headers, exc_info=None)",
};
