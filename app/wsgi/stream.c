/* wsgi/stream.c: wsgi.input (the body streamed through forkd_read, a
 * look-ahead buffer for readline only), wsgi.errors (lines to forkd's
 * error log) and wsgi.file_wrapper. */
#include "wsgi.h"

#include <string.h>

#define WSGI_BLOCK (64 * 1024) /* read() grows its result by this much */
#define WSGI_LOOKAHEAD 8192    /* wsgi.input's buffer for readline */
#define WSGI_LOG_LINE 1000     /* wsgi.errors splits longer lines */
#define WSGI_FILE_BLOCK 8192   /* file_wrapper's default block size */

struct wsgi_input {
    PyObject_HEAD struct wsgi_call *call; /* owned */
    char *buf;                            /* WSGI_LOOKAHEAD bytes, or NULL */
    size_t pos;
    size_t len;
    int eof;
};

struct wsgi_errors {
    PyObject_HEAD struct wsgi_call *call; /* owned */
    size_t len;
    char line[WSGI_LOG_LINE];
};

/* A bytes object being filled: len bytes used of cap. */
struct wsgi_bytes {
    PyObject *b;
    Py_ssize_t len;
    Py_ssize_t cap;
};

/* --- wsgi.input -------------------------------------------------------- */

/* Make room for at least need more bytes, at least doubling the room so
 * that a long line costs no more than linear copying.  0, or -1 with
 * MemoryError. */
static int
wsgi_bytes_grow(struct wsgi_bytes *bb, Py_ssize_t need)
{
    Py_ssize_t cap = bb->cap;

    if (cap - bb->len >= need)
        return 0;
    if (need > PY_SSIZE_T_MAX / 2 - bb->len) {
        PyErr_NoMemory();
        return -1;
    }
    cap = bb->len + need > 2 * bb->cap ? bb->len + need : 2 * bb->cap;
    if (bb->b == NULL)
        bb->b = PyBytes_FromStringAndSize(NULL, cap);
    else if (_PyBytes_Resize(&bb->b, cap) < 0)
        bb->b = NULL;
    if (bb->b == NULL)
        return -1;
    bb->cap = cap;
    return 0;
}

static PyObject *
wsgi_bytes_finish(struct wsgi_bytes *bb)
{
    if (bb->b == NULL)
        return PyBytes_FromStringAndSize("", 0);
    if (bb->len != bb->cap && _PyBytes_Resize(&bb->b, bb->len) < 0)
        return NULL;
    return bb->b;
}

/* Up to n body bytes into p: the look-ahead first, else forkd_read with
 * the GIL dropped.  The count, 0 at the end, -1 with an exception. */
static Py_ssize_t
wsgi_input_raw(struct wsgi_input *in, char *p, size_t n)
{
    ssize_t got;

    if (wsgi_call_check(in->call, "wsgi.input") < 0)
        return -1;
    if (in->pos < in->len) {
        got = (ssize_t)(in->len - in->pos < n ? in->len - in->pos : n);
        memcpy(p, in->buf + in->pos, (size_t)got);
        in->pos += (size_t)got;
        return got;
    }
    if (in->eof || n == 0)
        return 0;
    Py_BEGIN_ALLOW_THREADS;
    got = forkd_read(in->call->req, p, n);
    Py_END_ALLOW_THREADS;
    if (got < 0) {
        in->call->gone = 1;
        PyErr_SetString(PyExc_OSError,
                        "wsgi.input: reading the request body failed (the "
                        "client went away, was too slow or sent a malformed "
                        "body)");
        return -1;
    }
    in->eof = got == 0;
    return got;
}

/* read(size): up to size bytes, fewer only at the end of the body. */
static PyObject *
wsgi_input_read_n(struct wsgi_input *in, Py_ssize_t size)
{
    struct wsgi_bytes bb = {NULL, 0, 0};
    Py_ssize_t got, room;

    while (bb.len < size) {
        /* A first block of at most WSGI_BLOCK: read(huge) of a small body
         * must not allocate huge. */
        if (bb.len == bb.cap &&
            wsgi_bytes_grow(&bb, size - bb.len < WSGI_BLOCK ? size - bb.len
                                                            : WSGI_BLOCK) < 0)
            goto fail;
        room =
            bb.cap - bb.len < size - bb.len ? bb.cap - bb.len : size - bb.len;
        got =
            wsgi_input_raw(in, PyBytes_AS_STRING(bb.b) + bb.len, (size_t)room);
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        bb.len += got;
    }
    return wsgi_bytes_finish(&bb);
fail:
    Py_XDECREF(bb.b);
    return NULL;
}

/* Refill the look-ahead.  The count, 0 at the end, -1 with an exception. */
static Py_ssize_t
wsgi_input_fill(struct wsgi_input *in)
{
    Py_ssize_t got;

    if (in->buf == NULL && (in->buf = PyMem_Malloc(WSGI_LOOKAHEAD)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    in->pos = in->len = 0;
    got = wsgi_input_raw(in, in->buf, WSGI_LOOKAHEAD);
    if (got > 0)
        in->len = (size_t)got;
    return got;
}

/* readline(size): up to and including "\n", at most size bytes. */
static PyObject *
wsgi_input_line(struct wsgi_input *in, Py_ssize_t size)
{
    struct wsgi_bytes bb = {NULL, 0, 0};
    const char *p, *nl = NULL;
    size_t take;
    Py_ssize_t got;

    while (nl == NULL && bb.len < size) {
        if (in->pos == in->len && (got = wsgi_input_fill(in)) <= 0) {
            if (got < 0)
                goto fail;
            break;
        }
        p = in->buf + in->pos;
        take = in->len - in->pos;
        if ((Py_ssize_t)take > size - bb.len)
            take = (size_t)(size - bb.len);
        if ((nl = memchr(p, '\n', take)) != NULL)
            take = (size_t)(nl - p) + 1;
        if (wsgi_bytes_grow(&bb, (Py_ssize_t)take) < 0)
            goto fail;
        memcpy(PyBytes_AS_STRING(bb.b) + bb.len, p, take);
        bb.len += (Py_ssize_t)take;
        in->pos += take;
    }
    return wsgi_bytes_finish(&bb);
fail:
    Py_XDECREF(bb.b);
    return NULL;
}

/* A size argument: None or negative means no limit. */
static int
wsgi_size_arg(PyObject *args, const char *fmt, Py_ssize_t *size)
{
    PyObject *arg = Py_None;

    if (!PyArg_ParseTuple(args, fmt, &arg))
        return -1;
    *size = arg == Py_None ? -1 : PyLong_AsSsize_t(arg);
    if (*size == -1 && PyErr_Occurred())
        return -1;
    if (*size < 0)
        *size = PY_SSIZE_T_MAX;
    return 0;
}

static PyObject *
wsgi_input_read(PyObject *self, PyObject *args)
{
    Py_ssize_t size;

    if (wsgi_size_arg(args, "|O:read", &size) < 0)
        return NULL;
    return wsgi_input_read_n((struct wsgi_input *)self, size);
}

static PyObject *
wsgi_input_readline(PyObject *self, PyObject *args)
{
    Py_ssize_t size;

    if (wsgi_size_arg(args, "|O:readline", &size) < 0)
        return NULL;
    return wsgi_input_line((struct wsgi_input *)self, size);
}

static PyObject *
wsgi_input_readlines(PyObject *self, PyObject *args)
{
    PyObject *list, *line;
    Py_ssize_t hint, total = 0;

    if (wsgi_size_arg(args, "|O:readlines", &hint) < 0 ||
        (list = PyList_New(0)) == NULL)
        return NULL;
    if (hint == 0)
        hint = PY_SSIZE_T_MAX; /* as io's: 0 is no hint */
    while ((line = wsgi_input_line((struct wsgi_input *)self,
                                   PY_SSIZE_T_MAX)) != NULL &&
           PyBytes_GET_SIZE(line) > 0) {
        total += PyBytes_GET_SIZE(line);
        if (PyList_Append(list, line) < 0)
            break;
        Py_DECREF(line);
        if (total >= hint)
            return list;
    }
    if (line == NULL || PyErr_Occurred()) {
        Py_XDECREF(line);
        Py_DECREF(list);
        return NULL;
    }
    Py_DECREF(line);
    return list;
}

static PyObject *
wsgi_input_next(PyObject *self)
{
    PyObject *line = wsgi_input_line((struct wsgi_input *)self, PY_SSIZE_T_MAX);

    if (line != NULL && PyBytes_GET_SIZE(line) == 0)
        Py_CLEAR(line); /* NULL without an exception: StopIteration */
    return line;
}

static void
wsgi_input_dealloc(PyObject *self)
{
    struct wsgi_input *in = (struct wsgi_input *)self;

    Py_XDECREF(in->call);
    PyMem_Free(in->buf);
    PyObject_Free(self);
}

static PyMethodDef wsgi_input_methods[] = {
    {"read", wsgi_input_read, METH_VARARGS,
     "read(size=-1): up to size bytes of the body, all of it by default."},
    {"readline", wsgi_input_readline, METH_VARARGS,
     "readline(size=-1): the next line, at most size bytes."},
    {"readlines", wsgi_input_readlines, METH_VARARGS,
     "readlines(hint=-1): lines until their total reaches hint."},
    {NULL, NULL, 0, NULL}};

PyTypeObject wsgi_input_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "forkd.Input",
    .tp_basicsize = sizeof(struct wsgi_input),
    .tp_dealloc = wsgi_input_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, streamed from the client.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = wsgi_input_next,
    .tp_methods = wsgi_input_methods,
};

PyObject *
wsgi_input_new(struct wsgi_call *c)
{
    struct wsgi_input *in = PyObject_New(struct wsgi_input, &wsgi_input_type);

    if (in == NULL)
        return NULL;
    Py_INCREF(c);
    in->call = c;
    in->buf = NULL;
    in->pos = in->len = 0;
    in->eof = 0;
    return (PyObject *)in;
}

/* --- wsgi.errors ------------------------------------------------------- */

/* One line to the error log, with the request's method and target. */
static void
wsgi_errors_emit(struct wsgi_errors *e)
{
    struct wsgi_call *c = e->call;
    int n = (int)e->len;

    e->len = 0;
    if (n == 0)
        return;
    if (c->req != NULL && pthread_equal(c->thread, pthread_self()))
        forkd_log(c->req, FORKD_LOG_ERROR, "%.*s", n, e->line);
    else if (c->req != NULL) /* another thread of the app: no req calls */
        forkd_log(NULL, FORKD_LOG_ERROR, "%s %s: %.*s", c->method, c->uri, n,
                  e->line);
    else
        forkd_log(NULL, FORKD_LOG_ERROR, "wsgi.errors: %.*s", n, e->line);
}

static PyObject *
wsgi_errors_write(PyObject *self, PyObject *s)
{
    struct wsgi_errors *e = (struct wsgi_errors *)self;
    Py_ssize_t n;
    const char *p;

    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "wsgi.errors.write() takes str, not %s",
                     Py_TYPE(s)->tp_name);
        return NULL;
    }
    if ((p = PyUnicode_AsUTF8AndSize(s, &n)) == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] == '\n' || e->len == sizeof(e->line))
            wsgi_errors_emit(e);
        if (p[i] != '\n')
            e->line[e->len++] = p[i];
    }
    Py_RETURN_NONE;
}

static PyObject *
wsgi_errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq), *item, *r;

    if (it == NULL)
        return NULL;
    while ((item = PyIter_Next(it)) != NULL) {
        r = wsgi_errors_write(self, item);
        Py_DECREF(item);
        if (r == NULL)
            break;
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
wsgi_errors_flush(PyObject *self, PyObject *unused)
{
    (void)unused;
    wsgi_errors_emit((struct wsgi_errors *)self);
    Py_RETURN_NONE;
}

static void
wsgi_errors_dealloc(PyObject *self)
{
    struct wsgi_errors *e = (struct wsgi_errors *)self;

    wsgi_errors_emit(e);
    Py_XDECREF(e->call);
    PyObject_Free(self);
}

static PyMethodDef wsgi_errors_methods[] = {
    {"write", wsgi_errors_write, METH_O,
     "write(str): to forkd's error log, one log line per line."},
    {"writelines", wsgi_errors_writelines, METH_O,
     "writelines(seq): write each str of seq."},
    {"flush", wsgi_errors_flush, METH_NOARGS,
     "flush(): log a pending partial line."},
    {NULL, NULL, 0, NULL}};

PyTypeObject wsgi_errors_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "forkd.Errors",
    .tp_basicsize = sizeof(struct wsgi_errors),
    .tp_dealloc = wsgi_errors_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.errors: lines to forkd's error log with the request.",
    .tp_methods = wsgi_errors_methods,
};

PyObject *
wsgi_errors_new(struct wsgi_call *c)
{
    struct wsgi_errors *e = PyObject_New(struct wsgi_errors, &wsgi_errors_type);

    if (e == NULL)
        return NULL;
    Py_INCREF(c);
    e->call = c;
    e->len = 0;
    return (PyObject *)e;
}

/* Log what errors holds of an unfinished line. */
void
wsgi_errors_end(PyObject *errors)
{
    wsgi_errors_emit((struct wsgi_errors *)errors);
}

/* --- wsgi.file_wrapper ------------------------------------------------- */

static PyObject *
wsgi_file_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"filelike", "block_size", NULL};
    struct wsgi_file *f;
    PyObject *filelike;
    Py_ssize_t blksize = WSGI_FILE_BLOCK;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n:file_wrapper", kwlist,
                                     &filelike, &blksize))
        return NULL;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "file_wrapper: block_size <= 0");
        return NULL;
    }
    if ((f = (struct wsgi_file *)type->tp_alloc(type, 0)) == NULL)
        return NULL;
    Py_INCREF(filelike);
    f->filelike = filelike;
    f->blksize = blksize;
    return (PyObject *)f;
}

/* Iterated when it is not a regular file: blocks of read(blksize). */
static PyObject *
wsgi_file_next(PyObject *self)
{
    struct wsgi_file *f = (struct wsgi_file *)self;
    PyObject *data = PyObject_CallMethod(f->filelike, "read", "n", f->blksize);
    int more = data != NULL ? PyObject_IsTrue(data) : -1;

    if (more <= 0)
        Py_CLEAR(data); /* NULL without an exception: StopIteration */
    return data;
}

static PyObject *
wsgi_file_close(PyObject *self, PyObject *unused)
{
    struct wsgi_file *f = (struct wsgi_file *)self;
    PyObject *close = PyObject_GetAttrString(f->filelike, "close"), *r;

    (void)unused;
    if (close == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return r;
}

static int
wsgi_file_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((struct wsgi_file *)self)->filelike);
    return 0;
}

static int
wsgi_file_clear(PyObject *self)
{
    Py_CLEAR(((struct wsgi_file *)self)->filelike);
    return 0;
}

static void
wsgi_file_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    wsgi_file_clear(self);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef wsgi_file_methods[] = {
    {"close", wsgi_file_close, METH_NOARGS, "close(): close the file."},
    {NULL, NULL, 0, NULL}};

PyTypeObject wsgi_file_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "forkd.FileWrapper",
    .tp_basicsize = sizeof(struct wsgi_file),
    .tp_dealloc = wsgi_file_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "wsgi.file_wrapper(filelike, block_size=8192): a regular "
              "file goes out with sendfile(2), anything else in blocks.",
    .tp_traverse = wsgi_file_traverse,
    .tp_clear = wsgi_file_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = wsgi_file_next,
    .tp_methods = wsgi_file_methods,
    .tp_new = wsgi_file_new,
};
