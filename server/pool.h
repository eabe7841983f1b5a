/* pool: a worker's connections: a preallocated array with a free list, the
 * lists of waiting ones (idle keep-alive, head arriving, closing) ordered
 * by deadline, the buffers lent to those holding bytes, and their place in
 * the worker's epoll set.  Not thread-safe: the worker's lock guards it.
 * Never logs. */
#ifndef FORKD_POOL_H
#define FORKD_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* A list of waiting connections, oldest first; every member has the same
 * timeout, so the head has the nearest deadline. */
struct pool_list {
    struct conn *head, *tail;
};

struct pool {
    struct conn *conns; /* n, owned */
    size_t n;
    struct conn *free;
    size_t fresh; /* conns[fresh..n) were never handed out */
    size_t used;
    struct pool_list idle, reading, closing, draining, sending;
    char **free_bufs; /* buffers not lent; n entries; owned */
    size_t n_free_bufs, buf_cap;
    int ep;      /* the worker's epoll; not owned */
    int oneshot; /* threads mode: an event disarms its connection */
};

/* Allocate n connections of buf_cap-byte buffers for epoll ep.
 * Returns 0 or -1 (ENOMEM). */
int pool_init(struct pool *p, size_t n, size_t buf_cap, int ep, int oneshot);

/* Close every connection and free everything. */
void pool_fini(struct pool *p);

/* A free connection for fd (which it takes ownership of), or NULL if all
 * are used. */
struct conn *pool_get(struct pool *p, int fd);

/* Close c and return it to the free list. */
void pool_close(struct pool *p, struct conn *c);

/* Lend c a buffer (no-op if it has one); returns 0 or -1 (ENOMEM). */
int pool_buf_get(struct pool *p, struct conn *c);

/* Take back c's buffer (its bytes are dropped). */
void pool_buf_put(struct pool *p, struct conn *c);

/* Wait on c in state (IDLE, READING, CLOSING, DRAINING or SENDING) until
 * deadline_ms, watched by epoll: for output in SENDING, else for input.
 * A connection parked again in the same state keeps its first deadline.
 * READING and SENDING keep their buffer, the others give it back.
 * Returns 0 or -1 (epoll_ctl failed). */
int pool_park(struct pool *p, struct conn *c, enum conn_state state,
              uint64_t deadline_ms);

/* Take c out of its waiting list to serve it (state ACTIVE). */
void pool_activate(struct pool *p, struct conn *c);

/* The oldest waiting connection, closing ones first, then idle,
 * draining, sending and last reading ones, or NULL. */
struct conn *pool_oldest(struct pool *p);

/* The nearest deadline of a waiting connection, or UINT64_MAX. */
uint64_t pool_next_deadline(const struct pool *p);

/* The epoll key of c, and the connection of a key if it is still the
 * same connection (a stale event of a closed and reused one gives NULL). */
uint64_t pool_key(const struct pool *p, const struct conn *c);
struct conn *pool_lookup(struct pool *p, uint64_t key);

#endif
