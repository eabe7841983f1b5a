/* conn: one client socket: its input buffer, where its current request's
 * head and body sit in it, its peer, and blocking-with-deadline I/O for the
 * handler (forkd_read, writev, sendfile).  Never logs. */
#ifndef FORKD_CONN_H
#define FORKD_CONN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "http.h"

struct forkd_req;

enum conn_state {
    CONN_FREE,     /* in the worker's free list */
    CONN_IDLE,     /* kept alive, no bytes of a next request */
    CONN_READING,  /* part of a head has arrived */
    CONN_ACTIVE,   /* a request is being served */
    CONN_CLOSING,  /* answered and shut down for writing; input discarded */
    CONN_DRAINING, /* answered; the body the handler left is discarded */
    CONN_SENDING   /* a refusal waits for room to go out, then closes */
};

struct conn {
    int fd;         /* owned */
    uint32_t index; /* in the worker's pool */
    uint32_t gen;   /* bumped at every close: stale epoll events miss */
    enum conn_state state;
    int in_epoll;
    uint32_t ep_events; /* EPOLLIN or EPOLLOUT, while in_epoll */
    char *buf; /* the worker's buffer while bytes are held, else NULL */
    size_t len, cap;
    size_t head_len; /* the current request's head, during a request */
    size_t body_off; /* next unparsed body byte, during a request */
    struct http_scan scan;
    uint64_t deadline_ms;     /* keepalive or header timeout (monotonic) */
    struct conn *prev, *next; /* the worker's idle or reading list */
    unsigned requests;        /* served on this connection */
    char remote_addr[INET6_ADDRSTRLEN + 8];
    char remote_port[8];
    int trusted;       /* the peer may set X-Forwarded-For/-Proto */
    int more;          /* conn_writev: more follows (MSG_MORE), e.g. sendfile */
    unsigned listener; /* index of the listening socket */
    const char *server_name; /* the listener's host, not owned */
    const char *server_port; /* the listener's port, not owned */
    /* The unread body after a response (DRAINING): its decoder, taken
     * over from the request, and the bytes discarded so far. */
    int draining;
    struct body drain;
    uint64_t drain_read, drain_raw;
    int sending; /* a refusal waits in buf[out_off..len) (SENDING) */
    size_t out_off;
};

/* Whether addr (as in remote_addr) is in the comma-separated allow list
 * of forwarded_allow_ips ("*" for any, "unix" for unix sockets). */
int conn_is_trusted(const char *allow, const char *addr);

/* Record the peer address (REMOTE_ADDR/PORT) from accept's sockaddr. */
void conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len);

/* One read into the free space of buf.  Returns the byte count, 0 at EOF
 * or -1 (errno EAGAIN when nothing is there, ENOBUFS when buf is full). */
ssize_t conn_read(struct conn *c);

/* Write all of iov (modified), waiting up to timeout_s for the client to
 * read.  Returns the bytes written, or -1 (ETIMEDOUT, EPIPE, ...). */
ssize_t conn_writev(struct conn *c, struct iovec *iov, int n_iov,
                    unsigned timeout_s);

/* Send n bytes of fd from off with sendfile(2), waiting as conn_writev;
 * falls back to read+write where sendfile cannot be used. */
ssize_t conn_sendfile(struct conn *c, int fd, off_t off, size_t n,
                      unsigned timeout_s);

/* After a response, when the handler left some of req's body unread:
 * hand its decoder to the connection (c->draining) so that the poller can
 * discard the rest without a handler thread.  Returns 0, or -1 if the
 * connection cannot be reused (the client may still wait for the 100
 * Continue that never came, or the body already failed). */
int conn_drain_start(struct forkd_req *req);

/* Discard the body bytes at the start of c->buf, keeping what follows the
 * body (the next request).  Returns 1 when the body has ended, 0 when more
 * must come, -1 when it cannot be reused: malformed, more than body_limit
 * decoded bytes (0: no limit) or more than max_raw bytes discarded. */
int conn_drain(struct conn *c, uint64_t body_limit, uint64_t max_raw);

/* After a request: drop its head and body from buf, keeping any bytes of
 * the next (pipelined) request at the start.  Returns the bytes kept. */
size_t conn_consume(struct conn *c);

#endif
