/* echo: answers a JSON object of the request's environ plus its body, for
 * tests of the environ and of request body framing (chunked, 100-continue). */
#include "forkd.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ECHO_BLOCK_MIN (16 * 1024)
#define ECHO_BLOCK_MAX (1024 * 1024)
#define ECHO_OUT_CAP (64 * 1024)

/* A piece of the request body in the arena.  The body is kept as a list of
 * blocks rather than one growing buffer: the arena cannot realloc, and
 * copying into ever bigger blocks would cost twice the body in memory. */
struct echo_block {
    struct echo_block *next;
    size_t len;
    size_t cap;
    unsigned char data[];
};

/* The response body being built: bytes collect in buf and go out with
 * forkd_write when it is full.  err sticks once a write failed. */
struct echo_out {
    struct forkd_req *req;
    char *buf;
    size_t len;
    int err;
};

static void
echo_flush(struct echo_out *out)
{
    if (out->err == 0 && out->len > 0 &&
        forkd_write(out->req, out->buf, out->len) == -1)
        out->err = -1;
    out->len = 0;
}

static void
echo_put(struct echo_out *out, const void *p, size_t len)
{
    const char *s = p;

    while (len > 0) {
        size_t room = ECHO_OUT_CAP - out->len;
        size_t n = len < room ? len : room;

        memcpy(out->buf + out->len, s, n);
        out->len += n;
        s += n;
        len -= n;
        if (out->len == ECHO_OUT_CAP)
            echo_flush(out);
    }
}

static void
echo_puts(struct echo_out *out, const char *s)
{
    echo_put(out, s, strlen(s));
}

/* Append p as the inside of a JSON string: printable ASCII as is except
 * '"' and '\', everything else as \u00XX (bytes, not UTF-8 characters). */
static void
echo_escape(struct echo_out *out, const unsigned char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        char esc[6];
        unsigned char c = p[i];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            echo_put(out, esc, 2);
        } else if (c >= 0x20 && c <= 0x7e) {
            /* The common case, inline rather than through echo_put. */
            if (out->len == ECHO_OUT_CAP)
                echo_flush(out);
            out->buf[out->len++] = (char)c;
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            echo_put(out, esc, 6);
        }
    }
}

static void
echo_string(struct echo_out *out, const char *s)
{
    echo_put(out, "\"", 1);
    echo_escape(out, (const unsigned char *)s, strlen(s));
    echo_put(out, "\"", 1);
}

/* Read the whole body into a list of arena blocks; *len gets its length.
 * Returns the first block (NULL for an empty body with *len 0), or NULL with
 * *len set to SIZE_MAX when forkd_read or forkd_alloc failed. */
static struct echo_block *
echo_read_body(struct forkd_req *req, size_t *len)
{
    struct echo_block *head = NULL, *tail = NULL;
    size_t cap = ECHO_BLOCK_MIN;
    ssize_t got;

    *len = 0;
    for (;;) {
        if (tail == NULL || tail->len == tail->cap) {
            struct echo_block *b =
                forkd_alloc(req, sizeof(struct echo_block) + cap);

            if (b == NULL) {
                forkd_log(req, FORKD_LOG_ERROR,
                          "echo: out of memory after %zu body bytes", *len);
                goto fail;
            }
            b->next = NULL;
            b->len = 0;
            b->cap = cap;
            if (tail != NULL)
                tail->next = b;
            else
                head = b;
            tail = b;
            if (cap < ECHO_BLOCK_MAX)
                cap *= 2;
        }
        got = forkd_read(req, tail->data + tail->len, tail->cap - tail->len);
        if (got == 0)
            break;
        if (got == -1)
            goto fail;
        tail->len += (size_t)got;
        *len += (size_t)got;
    }
    return *len > 0 ? head : NULL;

fail:
    *len = SIZE_MAX;
    return NULL;
}

static int
echo_handle(struct forkd_req *req, void *state)
{
    static const struct forkd_header headers[] = {
        {"Content-Type", "application/json"},
    };
    struct echo_out out = {.req = req};
    struct echo_block *body;
    const char *name, *value;
    size_t iter = 0, body_len;
    char num[48];
    int first = 1;

    (void)state;
    /* The whole body first, so that a failed read still gets a 500. */
    body = echo_read_body(req, &body_len);
    if (body_len == SIZE_MAX)
        return -1;
    out.buf = forkd_alloc(req, ECHO_OUT_CAP);
    if (out.buf == NULL) {
        forkd_log(req, FORKD_LOG_ERROR, "echo: out of memory");
        return -1;
    }
    if (forkd_start_response(req, "200 OK", headers,
                             sizeof(headers) / sizeof(headers[0])) == -1)
        return -1;

    echo_put(&out, "{", 1);
    while (forkd_environ_next(req, &iter, &name, &value) == 1) {
        if (!first)
            echo_put(&out, ",", 1);
        first = 0;
        echo_string(&out, name);
        echo_put(&out, ":", 1);
        echo_string(&out, value);
    }
    echo_puts(&out, first ? "\"body\":\"" : ",\"body\":\"");
    for (; body != NULL; body = body->next)
        echo_escape(&out, body->data, body->len);
    snprintf(num, sizeof(num), "\",\"body_length\":%zu}\n", body_len);
    echo_puts(&out, num);
    echo_flush(&out);
    return out.err;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = NULL,
    .handle = echo_handle,
    .fini = NULL,
};
