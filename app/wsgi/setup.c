/* wsgi/setup.c: the work of init: start Python without its signal
 * handlers, make the environ template, put pythonpath, the working
 * directory and a virtualenv on sys.path, import the app. */
#include "wsgi.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The interpreter's sys.executable and the root of its sys.prefix search:
 * Debian's, whose libpython the Makefile links (never a python3 that comes
 * first on PATH, such as pyenv's). */
#define WSGI_STR2(x) #x
#define WSGI_STR(x) WSGI_STR2(x)
#ifndef WSGI_PYTHON
#define WSGI_PYTHON                                                            \
    "/usr/bin/python" WSGI_STR(PY_MAJOR_VERSION) "." WSGI_STR(PY_MINOR_VERSION)
#endif

#define WSGI_NAME_MAX 256 /* one attribute name of module = M:A.B */

static const char *const wsgi_option_keys[] = {"module", "pythonpath",
                                               "virtualenv", "preload"};

int
wsgi_check_options(const struct forkd_option *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < sizeof(wsgi_option_keys) / sizeof(wsgi_option_keys[0]) &&
               strcmp(opts[i].key, wsgi_option_keys[k]) != 0)
            k++;
        if (k == sizeof(wsgi_option_keys) / sizeof(wsgi_option_keys[0])) {
            forkd_log(NULL, FORKD_LOG_ERROR,
                      "wsgi: %s: unknown option (known: module, pythonpath, "
                      "virtualenv, preload)",
                      opts[i].key);
            return -1;
        }
    }
    if (forkd_option(opts, n, "module") == NULL) {
        forkd_log(NULL, FORKD_LOG_ERROR,
                  "wsgi: module: missing: name the app as module = "
                  "PKG.MOD:CALLABLE in [app], or -o module=PKG.MOD:CALLABLE");
        return -1;
    }
    return 0;
}

int
wsgi_preload_wanted(const struct forkd_option *opts, size_t n)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    const char *v = forkd_option(opts, n, "preload");

    if (v == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    forkd_log(NULL, FORKD_LOG_ERROR, "wsgi: preload = %s: want yes or no", v);
    return -1;
}

int
wsgi_freeze(struct wsgi *w)
{
    PyObject *gc = PyImport_ImportModule("gc"), *r = NULL;

    if (gc != NULL && (r = PyObject_CallMethod(gc, "collect", NULL)) != NULL) {
        Py_DECREF(r);
        r = PyObject_CallMethod(gc, "freeze", NULL);
    }
    Py_XDECREF(gc);
    if (r == NULL) {
        wsgi_init_error(w, "preload", "yes", "gc.freeze failed");
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* forkd loads handlers RTLD_LOCAL, which hides libpython's symbols from
 * the extension modules Python loads (lib-dynload's _contextvars, say:
 * they do not link libpython): make it global, as a python3 binary has it.
 * And keep this handler and libpython mapped after forkd's dlclose: the
 * app's daemon threads may still run, and what CPython keeps after
 * Py_FinalizeEx stays reachable rather than leaked. */
void
wsgi_pin(void)
{
    Dl_info info;

    if (dladdr((const void *)&forkd_app, &info) != 0 && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    if (dladdr((const void *)Py_None, &info) != 0 && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname,
                     RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE | RTLD_GLOBAL);
}

int
wsgi_start_python(void)
{
    PyConfig config;
    PyStatus st;

    PyConfig_InitPythonConfig(&config);
    /* forkd owns the signals (QUIT, HUP, TERM, INT, USR1, USR2): Python
     * must install no handler of its own, not even for SIGINT. */
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    st = PyConfig_SetBytesString(&config, &config.program_name, WSGI_PYTHON);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        forkd_log(NULL, FORKD_LOG_ERROR, "wsgi: cannot start Python: %s%s%s",
                  st.func ? st.func : "", st.func ? ": " : "",
                  st.err_msg ? st.err_msg : "failed");
        return -1;
    }
    return 0;
}

static int
wsgi_set(PyObject *dict, const char *key, PyObject *value)
{
    PyObject *k = PyUnicode_InternFromString(key);
    int rc = k != NULL && value != NULL ? PyDict_SetItem(dict, k, value) : -1;

    Py_XDECREF(k);
    return rc;
}

/* The interned keys and the environ template. */
static int
wsgi_setup_environ(struct wsgi *w)
{
    PyObject *t = PyDict_New(), *version = Py_BuildValue("(ii)", 1, 0);
    PyObject *empty = PyUnicode_FromString(""),
             *http = PyUnicode_FromString("http");
    int rc = -1;

    w->template = t;
    for (size_t i = 0; i < WSGI_N_KNOWN; i++)
        if ((w->keys[i].key = PyUnicode_InternFromString(wsgi_known[i])) ==
            NULL)
            goto out;
    if (t == NULL ||
        (w->k_input = PyUnicode_InternFromString("wsgi.input")) == NULL ||
        (w->k_errors = PyUnicode_InternFromString("wsgi.errors")) == NULL ||
        wsgi_set(t, "wsgi.version", version) < 0 ||
        wsgi_set(t, "wsgi.url_scheme", http) < 0 ||
        wsgi_set(t, "wsgi.multithread", Py_False) < 0 ||
        wsgi_set(t, "wsgi.multiprocess", Py_False) < 0 ||
        wsgi_set(t, "wsgi.run_once", Py_False) < 0 ||
        wsgi_set(t, "wsgi.input_terminated", Py_True) < 0 ||
        wsgi_set(t, "wsgi.file_wrapper", (PyObject *)&wsgi_file_type) < 0 ||
        wsgi_set(t, "SCRIPT_NAME", empty) < 0)
        goto out;
    rc = 0;
out:
    Py_XDECREF(version);
    Py_XDECREF(empty);
    Py_XDECREF(http);
    return rc;
}

static int
wsgi_setup_types(struct wsgi *w)
{
    PyObject *tb;

    if (PyType_Ready(&wsgi_call_type) < 0 ||
        PyType_Ready(&wsgi_input_type) < 0 ||
        PyType_Ready(&wsgi_errors_type) < 0 ||
        PyType_Ready(&wsgi_file_type) < 0 ||
        (tb = PyImport_ImportModule("traceback")) == NULL)
        return -1;
    w->format_exc = PyObject_GetAttrString(tb, "format_exception");
    Py_DECREF(tb);
    return w->format_exc != NULL ? 0 : -1;
}

/* dir as an absolute path: relative ones are taken from base (the
 * option's directory, forkd_option_dir), or the working directory when
 * base is NULL.  A new str, or NULL with an exception. */
static PyObject *
wsgi_abs(const char *base, const char *dir)
{
    char *cwd;
    PyObject *s;

    PyObject *os_path, *norm = NULL;

    if (dir[0] == '/') {
        s = PyUnicode_DecodeFSDefault(dir);
    } else if (base != NULL) {
        s = PyUnicode_FromFormat("%s/%s", base, dir);
    } else if ((cwd = getcwd(NULL, 0)) == NULL) {
        return PyErr_SetFromErrno(PyExc_OSError);
    } else {
        s = PyUnicode_FromFormat("%s/%s", cwd, dir);
        free(cwd);
    }
    if (s != NULL && (os_path = PyImport_ImportModule("os.path")) != NULL) {
        norm = PyObject_CallMethod(os_path, "normpath", "O", s);
        Py_DECREF(os_path);
    }
    Py_XDECREF(s);
    return norm;
}

/* Insert dir into sys.path at index at unless it is there.  0, or -1 with
 * the error logged for key = value. */
static int
wsgi_path_insert(struct wsgi *w, Py_ssize_t at, const char *base,
                 const char *dir, const char *key, const char *value)
{
    PyObject *path = PySys_GetObject("path"), *s = wsgi_abs(base, dir);
    struct stat st;
    int rc = -1, missing;

    if (s != NULL && path != NULL && PyList_Check(path)) {
        missing = stat(PyUnicode_AsUTF8(s), &st) < 0;
        if (missing || !S_ISDIR(st.st_mode))
            PyErr_Format(PyExc_NotADirectoryError, "%U: %s", s,
                         missing ? strerror(errno) : "not a directory");
        else if ((rc = PySequence_Contains(path, s)) == 0)
            rc = PyList_Insert(path, at, s);
        rc = rc < 0 ? -1 : 0;
    }
    if (rc < 0)
        wsgi_init_error(w, key, value, "cannot add it to sys.path");
    Py_XDECREF(s);
    return rc;
}

/* pythonpath = DIR[:DIR...]: first on sys.path, in order. */
static int
wsgi_setup_pythonpath(struct wsgi *w, const char *base, const char *value,
                      Py_ssize_t *at)
{
    char dir[PATH_MAX];
    const char *p = value, *end;

    for (; *p != '\0'; p = *end ? end + 1 : end) {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        if (end == p)
            continue;
        if ((size_t)(end - p) >= sizeof(dir)) {
            forkd_log(NULL, FORKD_LOG_ERROR,
                      "wsgi: pythonpath = %s: a directory is too long", value);
            return -1;
        }
        memcpy(dir, p, (size_t)(end - p));
        dir[end - p] = '\0';
        if (wsgi_path_insert(w, *at, base, dir, "pythonpath", value) < 0)
            return -1;
        (*at)++;
    }
    return 0;
}

/* virtualenv = DIR: its site-packages before the system's, after the
 * standard library (so old backports cannot shadow it), .pth files too. */
static int
wsgi_setup_venv(struct wsgi *w, const char *base, const char *venv)
{
    PyObject *path = PySys_GetObject("path"), *site, *abs, *r;
    char dir[PATH_MAX];
    Py_ssize_t at = 0, n = path != NULL ? PyList_GET_SIZE(path) : 0;

    if ((size_t)snprintf(dir, sizeof(dir), "%s/lib/python%d.%d/site-packages",
                         venv, PY_MAJOR_VERSION,
                         PY_MINOR_VERSION) >= sizeof(dir)) {
        forkd_log(NULL, FORKD_LOG_ERROR, "wsgi: virtualenv = %s: too long",
                  venv);
        return -1;
    }
    while (at < n) {
        const char *e = PyUnicode_AsUTF8(PyList_GET_ITEM(path, at));
        if (e == NULL ||
            (strlen(e) >= 9 && strcmp(e + strlen(e) - 9, "-packages") == 0))
            break;
        at++;
    }
    PyErr_Clear();
    if (wsgi_path_insert(w, at, base, dir, "virtualenv", venv) < 0)
        return -1;
    r = NULL;
    if ((site = PyImport_ImportModule("site")) != NULL &&
        (abs = wsgi_abs(base, dir)) != NULL) {
        r = PyObject_CallMethod(site, "addsitedir", "O", abs);
        Py_DECREF(abs);
    }
    Py_XDECREF(site);
    if (r == NULL) {
        wsgi_init_error(w, "virtualenv", venv, "site.addsitedir failed");
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static int
wsgi_setup_paths(struct wsgi *w, const struct forkd_option *opts, size_t n)
{
    const char *pp = forkd_option(opts, n, "pythonpath");
    const char *venv = forkd_option(opts, n, "virtualenv");
    Py_ssize_t at = 0;

    if (pp != NULL &&
        wsgi_setup_pythonpath(w, forkd_option_dir(opts, n, "pythonpath"), pp,
                              &at) < 0)
        return -1;
    /* As gunicorn does: module = myapp:app finds ./myapp.py. */
    if (wsgi_path_insert(w, at, NULL, ".", "module",
                         "(the working directory)") < 0)
        return -1;
    return venv != NULL ? wsgi_setup_venv(
                              w, forkd_option_dir(opts, n, "virtualenv"), venv)
                        : 0;
}

/* module = path/to/app.py: loaded under the file's base name, its
 * directory first on sys.path for its own imports.  New ref or NULL. */
static PyObject *
wsgi_import_file(const char *from, const char *file)
{
    char name[WSGI_NAME_MAX], dir[PATH_MAX];
    const char *slash = strrchr(file, '/'), *base = slash ? slash + 1 : file;
    PyObject *path = PySys_GetObject("path"), *abs, *util = NULL, *spec = NULL;
    PyObject *mod = NULL, *r = NULL, *d;

    size_t len = strlen(base);

    if (len > 3 && strcmp(base + len - 3, ".py") == 0)
        len -= 3;
    snprintf(name, sizeof(name), "%.*s", (int)len, base);
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file) : 1,
             slash ? file : ".");
    if ((d = wsgi_abs(from, dir[0] ? dir : "/")) == NULL ||
        (PySequence_Contains(path, d) == 0 && PyList_Insert(path, 0, d) < 0) ||
        PyErr_Occurred() || (abs = wsgi_abs(from, file)) == NULL) {
        Py_XDECREF(d);
        return NULL;
    }
    Py_DECREF(d);
    if ((util = PyImport_ImportModule("importlib.util")) != NULL &&
        (spec = PyObject_CallMethod(util, "spec_from_file_location", "sO", name,
                                    abs)) != NULL &&
        spec != Py_None &&
        (mod = PyObject_CallMethod(util, "module_from_spec", "O", spec)) &&
        PyDict_SetItemString(PyImport_GetModuleDict(), name, mod) == 0 &&
        (d = PyObject_GetAttrString(spec, "loader")) != NULL) {
        r = PyObject_CallMethod(d, "exec_module", "O", mod);
        Py_DECREF(d);
    }
    if (spec == Py_None)
        PyErr_Format(PyExc_ImportError, "%U: not a Python source file", abs);
    Py_XDECREF(util);
    Py_XDECREF(spec);
    Py_DECREF(abs);
    if (r == NULL)
        Py_CLEAR(mod);
    Py_XDECREF(r);
    return mod;
}

static int
wsgi_is_file(const char *mod)
{
    size_t n = strlen(mod);

    return strchr(mod, '/') != NULL ||
           (n > 3 && strcmp(mod + n - 3, ".py") == 0);
}

/* obj.A.B for attr "A.B", called if attr ends in "()" (an app factory,
 * as gunicorn's module:create_app()).  New ref, or NULL. */
static PyObject *
wsgi_attr(PyObject *obj, const char *attr)
{
    char name[WSGI_NAME_MAX];
    size_t len = strlen(attr), seg;
    int call = len > 2 && strcmp(attr + len - 2, "()") == 0;
    PyObject *next;

    len -= call ? 2 : 0;
    Py_INCREF(obj);
    for (const char *p = attr; p < attr + len; p += seg + 1) {
        seg = strcspn(p, ".");
        if (seg > (size_t)(attr + len - p))
            seg = (size_t)(attr + len - p);
        snprintf(name, sizeof(name), "%.*s", (int)seg, p);
        next = PyObject_GetAttrString(obj, name);
        Py_DECREF(obj);
        if ((obj = next) == NULL)
            return NULL;
    }
    if (call) {
        next = PyObject_CallNoArgs(obj);
        Py_DECREF(obj);
        obj = next;
    }
    return obj;
}

/* module = PKG.MOD:CALLABLE or path/app.py:CALLABLE: the app callable. */
static int
wsgi_setup_app(struct wsgi *w, const char *base, const char *spec)
{
    char mod[PATH_MAX], what[PATH_MAX + 64];
    const char *colon = strrchr(spec, ':');
    const char *attr = colon != NULL ? colon + 1 : "application";
    PyObject *m;

    snprintf(mod, sizeof(mod), "%.*s",
             colon != NULL ? (int)(colon - spec) : (int)strlen(spec), spec);
    if (mod[0] == '\0' || attr[0] == '\0') {
        forkd_log(
            NULL, FORKD_LOG_ERROR,
            "wsgi: module = %s: want PKG.MOD:CALLABLE or FILE.py:CALLABLE",
            spec);
        return -1;
    }
    m = wsgi_is_file(mod) ? wsgi_import_file(base, mod)
                          : PyImport_ImportModule(mod);
    snprintf(what, sizeof(what), "cannot import %s", mod);
    if (m == NULL) {
        wsgi_init_error(w, "module", spec, what);
        return -1;
    }
    w->app = wsgi_attr(m, attr);
    Py_DECREF(m);
    snprintf(what, sizeof(what), "no callable %s in %s", attr, mod);
    if (w->app == NULL) {
        wsgi_init_error(w, "module", spec, what);
        return -1;
    }
    if (!PyCallable_Check(w->app)) {
        forkd_log(NULL, FORKD_LOG_ERROR,
                  "wsgi: module = %s: %s is a %s, not a callable", spec, attr,
                  Py_TYPE(w->app)->tp_name);
        return -1;
    }
    return 0;
}

int
wsgi_setup(struct wsgi *w, const struct forkd_option *opts, size_t n)
{
    if (wsgi_setup_types(w) < 0 || wsgi_setup_environ(w) < 0) {
        wsgi_init_error(w, "module", forkd_option(opts, n, "module"),
                        "cannot set up the bridge");
        return -1;
    }
    if (wsgi_setup_paths(w, opts, n) < 0)
        return -1;
    return wsgi_setup_app(w, forkd_option_dir(opts, n, "module"),
                          forkd_option(opts, n, "module"));
}
