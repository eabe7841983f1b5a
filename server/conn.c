#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "req.h"

int
conn_is_trusted(const char *allow, const char *addr)
{
    size_t alen = strlen(addr);

    if (strcmp(addr, "unix:") == 0)
        addr = "unix", alen = 4;
    while (allow && *allow) {
        size_t n;
        while (*allow == ' ' || *allow == ',')
            allow++;
        n = strcspn(allow, ", ");
        if ((n == 1 && *allow == '*') ||
            (n == alen && strncmp(allow, addr, n) == 0))
            return 1;
        allow += n;
    }
    return 0;
}

void
conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
    const void *addr = NULL;
    unsigned port = 0;

    (void)len;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        addr = &in->sin_addr;
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        addr = &in6->sin6_addr;
        port = ntohs(in6->sin6_port);
    }
    if (addr == NULL || !inet_ntop(sa->sa_family, addr, c->remote_addr,
                                   sizeof(c->remote_addr))) {
        /* unix sockets have no peer address; nginx writes "unix:" too */
        strcpy(c->remote_addr, "unix:");
        c->remote_port[0] = '\0';
        return;
    }
    /* Not snprintf: once per connection, on the connection-per-request
     * path. */
    char digits[8];
    size_t k = sizeof(digits);
    do
        digits[--k] = (char)('0' + port % 10);
    while ((port /= 10) != 0);
    memcpy(c->remote_port, digits + k, sizeof(digits) - k);
    c->remote_port[sizeof(digits) - k] = '\0';
}

ssize_t
conn_read(struct conn *c)
{
    ssize_t n;

    if (c->len == c->cap) {
        errno = ENOBUFS;
        return -1;
    }
    do
        n = read(c->fd, c->buf + c->len, c->cap - c->len);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

/* Wait for events on fd, up to timeout_s in all: a signal that interrupts
 * the wait does not start it again.  Returns 0, or -1 (ETIMEDOUT). */
static int
conn_poll(int fd, short events, unsigned timeout_s)
{
    struct pollfd p = {.fd = fd, .events = events};
    struct timespec now;
    int64_t end_ms, left_ms = (int64_t)timeout_s * 1000;
    int n;

    clock_gettime(CLOCK_MONOTONIC, &now);
    end_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + left_ms;
    for (;;) {
        n = poll(&p, 1, (int)left_ms);
        if (n >= 0 || errno != EINTR)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left_ms = end_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left_ms <= 0) {
            n = 0;
            break;
        }
    }
    if (n == 0)
        errno = ETIMEDOUT;
    return n > 0 ? 0 : -1;
}

static int
conn_wait(struct conn *c, short events, unsigned timeout_s)
{
    return conn_poll(c->fd, events, timeout_s);
}

ssize_t
conn_writev(struct conn *c, struct iovec *iov, int n_iov, unsigned timeout_s)
{
    ssize_t total = 0, n;

    while (n_iov > 0) {
        if (c->more) {
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
            n = sendmsg(c->fd, &msg, MSG_MORE | MSG_NOSIGNAL);
        } else {
            n = writev(c->fd, iov, n_iov);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN && conn_wait(c, POLLOUT, timeout_s) == 0)
                continue;
            return -1;
        }
        total += n;
        while (n_iov > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            n_iov--;
        }
        if (n_iov > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return total;
}

/* Read up to n bytes of fd at *off into buf, waiting up to timeout_s for
 * a descriptor that has none yet.  A pipe or socket has no offset (pread
 * says ESPIPE): *seekable is then cleared, and it is read from where it
 * stands, this time and the next. */
static ssize_t
conn_read_file(int fd, off_t *off, int *seekable, char *buf, size_t n,
               unsigned timeout_s)
{
    for (;;) {
        ssize_t r = *seekable ? pread(fd, buf, n, *off) : read(fd, buf, n);
        if (r >= 0) {
            *off += r;
            return r;
        }
        if (errno == ESPIPE && *seekable)
            *seekable = 0;
        else if (errno == EAGAIN) {
            if (conn_poll(fd, POLLIN, timeout_s) < 0)
                return -1;
        } else if (errno != EINTR) {
            return -1;
        }
    }
}

/* Copy up to n bytes of fd through memory onto c.  Returns the bytes
 * copied (0 at fd's end) or -1. */
static ssize_t
conn_copy_file(struct conn *c, int fd, off_t *off, int *seekable, size_t n,
               unsigned timeout_s)
{
    char tmp[16384];
    ssize_t r = conn_read_file(fd, off, seekable, tmp,
                               n < sizeof(tmp) ? n : sizeof(tmp), timeout_s);
    struct iovec iov = {tmp, (size_t)(r > 0 ? r : 0)};

    if (r > 0 && conn_writev(c, &iov, 1, timeout_s) < 0)
        return -1;
    return r;
}

ssize_t
conn_sendfile(struct conn *c, int fd, off_t off, size_t n, unsigned timeout_s)
{
    size_t left = n;
    int copy = 0, seekable = 1;

    while (left > 0) {
        ssize_t k =
            copy ? conn_copy_file(c, fd, &off, &seekable, left, timeout_s)
                 : sendfile(c->fd, fd, &off, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && !copy && errno == EAGAIN &&
            conn_wait(c, POLLOUT, timeout_s) == 0)
            continue;
        if (k < 0 && !copy &&
            (errno == EINVAL || errno == ENOSYS || errno == ESPIPE)) {
            /* not a regular file (a pipe, a socket): copy through memory,
             * this block and the next ones */
            copy = 1;
            continue;
        }
        if (k <= 0) {
            if (k == 0)
                errno = EIO; /* the file is shorter than promised */
            return -1;
        }
        left -= (size_t)k;
    }
    return (ssize_t)n;
}

/* Send "100 Continue" once, on the handler's first read (RFC 9110 10.1.1). */
static int
conn_send_continue(struct forkd_req *req)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {(void *)msg, sizeof(msg) - 1};

    req->continue_sent = 1;
    if (!req->head.expect_continue || req->resp.head_sent)
        return 0;
    return conn_writev(req->conn, &iov, 1, req->cfg->send_timeout_s) < 0 ? -1
                                                                         : 0;
}

/* Make room after the head for more body bytes. */
static void
conn_compact_body(struct conn *c)
{
    if (c->body_off == c->len) {
        c->body_off = c->len = c->head_len;
    } else if (c->len == c->cap && c->body_off > c->head_len) {
        memmove(c->buf + c->head_len, c->buf + c->body_off,
                c->len - c->body_off);
        c->len -= c->body_off - c->head_len;
        c->body_off = c->head_len;
    }
}

/* Get more raw body bytes into buf, waiting up to timeout_s. */
static int
conn_fill_body(struct conn *c, unsigned timeout_s)
{
    for (;;) {
        ssize_t n = conn_read(c);
        if (n > 0)
            return 0;
        if (n == 0) {
            errno = ECONNRESET; /* the body ended early */
            return -1;
        }
        if (errno != EAGAIN || conn_wait(c, POLLIN, timeout_s) < 0)
            return -1;
    }
}

/* Invariant: a request whose body failed never shares its connection
 * (DESIGN 7).  Where the failure left the decoder is no place to look for
 * a next request: the bytes after it may be a request the client smuggled
 * inside the body.  So the failure sticks (every later read fails too)
 * and the response says Connection: close, whatever the handler does with
 * the error. */
static ssize_t
conn_body_failed(struct forkd_req *req, int status)
{
    if (req->body_status == 0)
        req->body_status = status;
    req->keep_alive = 0;
    errno = req->body_status == 413   ? EFBIG
            : req->body_status == 408 ? ETIMEDOUT
                                      : EPROTO;
    return -1;
}

ssize_t
forkd_read(struct forkd_req *req, void *buf, size_t n)
{
    struct conn *c = req->conn;
    struct http_head *h = &req->head;

    if (req->body_status)
        return conn_body_failed(req, req->body_status);
    if (n == 0 || h->body_done)
        return 0;
    if (!req->continue_sent && conn_send_continue(req) < 0)
        return conn_body_failed(req, 400);
    for (;;) {
        if (c->body_off < c->len) {
            size_t used;
            ssize_t r =
                http_body_read(h, c->buf + c->body_off, c->len - c->body_off,
                               buf, n, &used, req->limits);
            if (r < 0)
                return conn_body_failed(req, errno == EFBIG ? 413 : 400);
            c->body_off += used;
            conn_compact_body(c);
            if (r > 0 || h->body_done)
                return r;
            continue;
        }
        conn_compact_body(c);
        if (conn_fill_body(c, req->cfg->body_timeout_s) < 0)
            return conn_body_failed(req, errno == ETIMEDOUT ? 408 : 400);
    }
}

int
conn_drain_start(struct forkd_req *req)
{
    struct conn *c = req->conn;

    /* The client waits for 100 Continue that never came: it may or may not
     * send the body, so the connection cannot be reused safely. */
    if (req->body_status || (req->head.expect_continue && !req->continue_sent))
        return -1;
    c->draining = 1;
    c->drain = req->head.body;
    c->drain_read = req->head.body_read;
    c->drain_raw = 0;
    return 0;
}

int
conn_drain(struct conn *c, uint64_t body_limit, uint64_t max_raw)
{
    char sink[4096];
    size_t off = 0;
    int rc = 0;

    while (off < c->len && !body_is_done(&c->drain)) {
        size_t used;
        ssize_t n = body_decode(&c->drain, c->buf + off, c->len - off, sink,
                                sizeof(sink), &used);
        if (n < 0)
            return -1;
        off += used;
        c->drain_read += (uint64_t)n;
        c->drain_raw += used;
        if ((body_limit && c->drain_read > body_limit) ||
            c->drain_raw > max_raw)
            return -1;
    }
    if (body_is_done(&c->drain)) {
        c->draining = 0;
        rc = 1;
    }
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    return rc;
}

size_t
conn_consume(struct conn *c)
{
    size_t keep = c->len - c->body_off;

    if (keep > 0 && c->body_off > 0)
        memmove(c->buf, c->buf + c->body_off, keep);
    c->len = keep;
    c->head_len = c->body_off = 0;
    memset(&c->scan, 0, sizeof(c->scan));
    return keep;
}
