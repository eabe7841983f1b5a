#include "environ.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "conn.h"
#include "forkd.h"
#include "http.h"
#include "req.h"

static int
environ_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *
environ_decode_path(struct arena *a, const char *path, size_t len, int *status)
{
    char *out = arena_alloc(a, len + 1), *p = out;

    if (out == NULL) {
        *status = 500;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (path[i] != '%') {
            *p++ = path[i];
            continue;
        }
        int hi = i + 2 < len ? environ_hex((unsigned char)path[i + 1]) : -1;
        int lo = hi >= 0 ? environ_hex((unsigned char)path[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            *status = 400; /* invalid escape, or %00 */
            return NULL;
        }
        *p++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *p = '\0';
    return out;
}

int
environ_setup(struct forkd_req *req)
{
    int status = 0;

    req->env = NULL;
    req->n_env = 0;
    req->path_info = environ_decode_path(&req->arena, req->head.path,
                                         req->head.path_len, &status);
    return req->path_info ? 0 : status;
}

/* A header that becomes an HTTP_ variable: not the two CGI ones, and not
 * one whose name has '_' (it would pass for its '-' twin; nginx drops them
 * too). */
static int
environ_is_http(const struct http_header *hd)
{
    /* Not Proxy either: HTTP_PROXY would pass for the proxy setting of
     * code that copies the environ into the process's ("httpoxy"). */
    return memchr(hd->name, '_', hd->name_len) == NULL &&
           !http_name_is(hd, "content-type") &&
           !http_name_is(hd, "content-length") && !http_name_is(hd, "proxy");
}

/* Whether header hd is the one named by suffix ("USER_AGENT"). */
static int
environ_header_matches(const struct http_header *hd, const char *suffix)
{
    size_t i;

    for (i = 0; i < hd->name_len && suffix[i]; i++) {
        char c = hd->name[i] == '-' ? '_' : hd->name[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != suffix[i])
            return 0;
    }
    return i == hd->name_len && suffix[i] == '\0';
}

/* The value of every header matching suffix, joined with ", ". */
static const char *
environ_header(struct forkd_req *req, const char *suffix)
{
    const struct http_header *first = NULL;
    size_t total = 0, n = 0;
    char *out, *p;

    /* An absolute-form target's authority replaces Host (RFC 9112 3.2.2),
     * so that the handler never sees the ignored one. */
    if (req->head.host_from_target && strcmp(suffix, "HOST") == 0)
        return arena_strndup(&req->arena, req->head.host, req->head.host_len);
    for (size_t i = 0; i < req->head.n_headers; i++) {
        const struct http_header *hd = &req->head.headers[i];
        if (environ_is_http(hd) && environ_header_matches(hd, suffix)) {
            first = first ? first : hd;
            total += hd->value_len + 2;
            n++;
        }
    }
    if (n <= 1)
        return first ? first->value : NULL;
    if ((out = p = arena_alloc(&req->arena, total)) == NULL)
        return NULL;
    for (size_t i = 0; i < req->head.n_headers; i++) {
        const struct http_header *hd = &req->head.headers[i];
        if (environ_is_http(hd) && environ_header_matches(hd, suffix)) {
            if (p != out)
                p = stpcpy(p, ", ");
            memcpy(p, hd->value, hd->value_len);
            p += hd->value_len;
        }
    }
    *p = '\0';
    return out;
}

/* SERVER_NAME: the host of Host (or of an absolute-form target), else the
 * listening address.  SERVER_PORT is always the port the request came in
 * on (RFC 3875 4.1.15), whatever Host claims. */
static const char *
environ_server_name(struct forkd_req *req)
{
    const char *h = req->head.host, *colon;
    size_t len = req->head.host_len;

    if (h == NULL || len == 0)
        return req->conn->server_name;
    colon = memrchr(h, ':', len);
    if (colon && memchr(colon, ']', len - (size_t)(colon - h)))
        colon = NULL; /* the colon is inside an IPv6 literal */
    if (colon == h)
        return req->conn->server_name; /* ":8080": no host to name */
    return arena_strndup(&req->arena, h, colon ? (size_t)(colon - h) : len);
}

/* REMOTE_ADDR: the peer, or, from a trusted proxy, the last address of
 * X-Forwarded-For (the one that proxy saw; earlier ones are the client's
 * word). */
static const char *
environ_remote_addr(struct forkd_req *req)
{
    const char *xff, *last;
    size_t len;

    if (!req->conn->trusted ||
        (xff = environ_header(req, "X_FORWARDED_FOR")) == NULL)
        return req->conn->remote_addr;
    last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ' || *last == '\t')
        last++;
    len = strcspn(last, " \t");
    return len ? arena_strndup(&req->arena, last, len) : req->conn->remote_addr;
}

/* wsgi.url_scheme: https only when a trusted proxy says so. */
static const char *
environ_scheme(struct forkd_req *req)
{
    const char *proto;

    if (req->conn->trusted &&
        (proto = environ_header(req, "X_FORWARDED_PROTO")) != NULL &&
        strcasecmp(proto, "https") == 0)
        return "https";
    return "http";
}

/* An X-Request-Id worth keeping: 1 to 64 of [A-Za-z0-9._:-]. */
static int
environ_id_ok(const char *id)
{
    size_t n = strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789._:-");

    return n > 0 && n <= 64 && id[n] == '\0';
}

/* splitmix64: a fast, well-spread sequence from a random start. */
static uint64_t
environ_next_id(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

const char *
environ_request_id(struct forkd_req *req, int from_header)
{
    const char *in;

    if (req->request_id[0] != '\0')
        return req->request_id;
    /* A trusted proxy's (nginx: proxy_set_header X-Request-Id
     * $request_id) is the one its own log has. */
    if (from_header && req->conn->trusted &&
        (in = environ_header(req, "X_REQUEST_ID")) != NULL &&
        environ_id_ok(in)) {
        snprintf(req->request_id, sizeof(req->request_id), "%s", in);
    } else {
        /* 128 random bits in 32 hex digits, as nginx's $request_id. */
        static const char hex[] = "0123456789abcdef";
        for (int k = 0; k < 2; k++) {
            uint64_t v = environ_next_id(&req->id_state);
            for (int j = 0; j < 16; j++, v >>= 4)
                req->request_id[16 * k + j] = hex[v & 15];
        }
        req->request_id[32] = '\0';
    }
    return req->request_id;
}

static const char *const environ_names[] = {
    "REQUEST_METHOD",   "SCRIPT_NAME",      "PATH_INFO",
    "QUERY_STRING",     "REQUEST_URI",      "SERVER_PROTOCOL",
    "CONTENT_TYPE",     "CONTENT_LENGTH",   "SERVER_NAME",
    "SERVER_PORT",      "REMOTE_ADDR",      "REMOTE_PORT",
    "wsgi.url_scheme",  "wsgi.multithread", "wsgi.multiprocess",
    "forkd.worker_pid", "forkd.request_id",
};

#define ENVIRON_N_FIXED (sizeof(environ_names) / sizeof(environ_names[0]))

static const char *
environ_fixed(struct forkd_req *req, size_t i)
{
    const struct http_head *h = &req->head;

    switch (i) {
    case 0:
        return h->method;
    case 1:
        return "";
    case 2:
        return req->path_info;
    case 3:
        return h->query;
    case 4:
        return h->target;
    case 5:
        return h->protocol;
    case 6:
        return h->content_type;
    case 7:
        return h->content_length;
    case 8:
        return environ_server_name(req);
    case 9:
        return req->conn->server_port;
    case 10:
        return environ_remote_addr(req);
    case 11:
        return req->conn->remote_port;
    case 12:
        return environ_scheme(req);
    case 13:
        return req->multithread ? "true" : "false";
    case 14:
        return req->multiprocess ? "true" : "false";
    case 15:
        return req->worker_pid;
    default:
        return environ_request_id(req, 1);
    }
}

const char *
forkd_getenv(struct forkd_req *req, const char *name)
{
    if (name == NULL)
        return NULL;
    if (strncmp(name, "HTTP_", 5) == 0)
        return environ_header(req, name + 5);
    for (size_t i = 0; i < ENVIRON_N_FIXED; i++)
        if (strcmp(name, environ_names[i]) == 0)
            return environ_fixed(req, i);
    return NULL;
}

/* "HTTP_" + the name upper-cased with '-' as '_'. */
static char *
environ_http_name(struct forkd_req *req, const struct http_header *hd)
{
    char *out = arena_alloc(&req->arena, hd->name_len + 6);

    if (out == NULL)
        return NULL;
    memcpy(out, "HTTP_", 5);
    for (size_t i = 0; i < hd->name_len; i++) {
        char c = hd->name[i] == '-' ? '_' : hd->name[i];
        out[5 + i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    out[5 + hd->name_len] = '\0';
    return out;
}

static int
environ_is_first(struct forkd_req *req, size_t i)
{
    const struct http_header *hd = &req->head.headers[i];

    for (size_t j = 0; j < i; j++) {
        const struct http_header *o = &req->head.headers[j];
        if (environ_is_http(o) && o->name_len == hd->name_len &&
            strncasecmp(o->name, hd->name, hd->name_len) == 0)
            return 0;
    }
    return 1;
}

static int
environ_build(struct forkd_req *req)
{
    size_t cap = 2 * (ENVIRON_N_FIXED + req->head.n_headers + 1), n = 0;
    const char **env = arena_alloc(&req->arena, cap * sizeof(*env));
    const char *host = forkd_getenv(req, "HTTP_HOST");

    if (env == NULL)
        return -1;
    /* An absolute-form target gives HTTP_HOST even without a Host field. */
    if (host && req->head.host_from_target) {
        env[n++] = "HTTP_HOST";
        env[n++] = host;
    }
    for (size_t i = 0; i < ENVIRON_N_FIXED; i++) {
        const char *v = environ_fixed(req, i);
        if (v) {
            env[n++] = environ_names[i];
            env[n++] = v;
        }
    }
    for (size_t i = 0; i < req->head.n_headers; i++) {
        const struct http_header *hd = &req->head.headers[i];
        if (!environ_is_http(hd) || !environ_is_first(req, i) ||
            (req->head.host_from_target && http_name_is(hd, "host")))
            continue;
        char *name = environ_http_name(req, hd);
        const char *v = name ? environ_header(req, name + 5) : NULL;
        if (v == NULL)
            return -1;
        env[n++] = name;
        env[n++] = v;
    }
    req->env = env;
    req->n_env = n / 2;
    return 0;
}

int
forkd_environ_next(struct forkd_req *req, size_t *iter, const char **name,
                   const char **value)
{
    if (req->env == NULL && environ_build(req) < 0)
        return 0;
    if (*iter >= req->n_env)
        return 0;
    *name = req->env[2 * *iter];
    *value = req->env[2 * *iter + 1];
    (*iter)++;
    return 1;
}
