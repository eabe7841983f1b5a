/* test_pool: a worker's connections: the free list and generations (a
 * stale epoll key must miss a closed and reused connection), the waiting
 * lists and their deadlines, the lent buffers, and the epoll set in both
 * modes (level-triggered for sync workers, one-shot for threads).  Each
 * connection is one end of a socketpair, so that epoll_ctl works and the
 * test can make it readable from the other end. */
#include "pool.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL_TEST_N 4
#define POOL_TEST_CAP 128

struct pool_test {
    struct pool p;
    int ep;
    int peer[POOL_TEST_N * 2]; /* the client end of each connection */
    size_t n_peers;
};

static void
pool_test_init(struct pool_test *t, size_t n, int oneshot)
{
    memset(t, 0, sizeof(*t));
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(t->ep, 0);
    ck_assert_int_eq(pool_init(&t->p, n, POOL_TEST_CAP, t->ep, oneshot), 0);
}

/* A new connection from the pool for one end of a socketpair; the other
 * end is kept in t->peer. */
static struct conn *
pool_test_get(struct pool_test *t)
{
    int sv[2];
    struct conn *c;

    ck_assert_uint_lt(t->n_peers, sizeof(t->peer) / sizeof(t->peer[0]));
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
    c = pool_get(&t->p, sv[0]);
    if (c == NULL) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    ck_assert_int_eq(c->fd, sv[0]);
    t->peer[t->n_peers++] = sv[1];
    return c;
}

static void
pool_test_fini(struct pool_test *t)
{
    pool_fini(&t->p);
    for (size_t i = 0; i < t->n_peers; i++)
        close(t->peer[i]);
    close(t->ep);
}

/* The members of list l, head to tail, are exactly want[0..n); the back
 * links agree. */
static void
pool_test_list_is(const struct pool_list *l, struct conn *const *want, size_t n)
{
    struct conn *c = l->head, *prev = NULL;

    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(c == want[i], "member %zu: %p, expected %p", i, (void *)c,
                      (void *)want[i]);
        ck_assert_ptr_eq(c->prev, prev);
        prev = c;
        c = c->next;
    }
    ck_assert_ptr_null(c);
    ck_assert_ptr_eq(l->tail, prev);
}

/* The connection keys epoll reports within timeout_ms (at most 8). */
static int
pool_test_events(struct pool_test *t, uint64_t *keys, int timeout_ms)
{
    struct epoll_event evs[8];
    int n = epoll_wait(t->ep, evs, 8, timeout_ms);

    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++)
        keys[i] = evs[i].data.u64;
    return n;
}

/* Whether the peer of a closed connection sees EOF. */
static int
pool_test_peer_eof(int peer)
{
    char b;

    return read(peer, &b, 1) == 0;
}

/* --- init, get, close --------------------------------------------------- */

START_TEST(test_pool_init_fini)
{
    for (int oneshot = 0; oneshot <= 1; oneshot++) {
        struct pool_test t;

        pool_test_init(&t, POOL_TEST_N, oneshot);
        ck_assert_uint_eq(t.p.n, POOL_TEST_N);
        ck_assert_uint_eq(t.p.used, 0);
        ck_assert_uint_eq(t.p.buf_cap, POOL_TEST_CAP);
        ck_assert_int_eq(t.p.ep, t.ep);
        ck_assert_int_eq(t.p.oneshot, oneshot);
        ck_assert_ptr_null(t.p.idle.head);
        ck_assert_ptr_null(t.p.reading.head);
        ck_assert_ptr_null(t.p.closing.head);
        /* Nothing is touched before use: no connection was handed out. */
        ck_assert_uint_eq(t.p.fresh, 0);
        ck_assert_ptr_null(t.p.free);
        ck_assert_ptr_null(pool_lookup(&t.p, 0));
        ck_assert_uint_eq(pool_next_deadline(&t.p), UINT64_MAX);
        ck_assert_ptr_null(pool_oldest(&t.p));
        pool_test_fini(&t);
        ck_assert_ptr_null(t.p.conns);
        ck_assert_uint_eq(t.p.n, 0);
    }
}
END_TEST

START_TEST(test_pool_get_until_null)
{
    struct pool_test t;
    struct conn *c[POOL_TEST_N];

    pool_test_init(&t, POOL_TEST_N, 0);
    for (size_t i = 0; i < POOL_TEST_N; i++) {
        c[i] = pool_test_get(&t);
        ck_assert_ptr_nonnull(c[i]);
        ck_assert_int_eq(c[i]->state, CONN_FREE);
        ck_assert_ptr_null(c[i]->buf);
        ck_assert_int_eq(c[i]->in_epoll, 0);
        ck_assert_uint_eq(t.p.used, i + 1);
        for (size_t j = 0; j < i; j++)
            ck_assert_ptr_ne(c[i], c[j]);
    }
    ck_assert_ptr_null(pool_test_get(&t));
    ck_assert_uint_eq(t.p.used, POOL_TEST_N);

    /* A closed one comes back, closed (its peer sees EOF). */
    pool_close(&t.p, c[2]);
    ck_assert_uint_eq(t.p.used, POOL_TEST_N - 1);
    ck_assert_int_eq(c[2]->fd, -1);
    ck_assert_int_eq(c[2]->state, CONN_FREE);
    ck_assert(pool_test_peer_eof(t.peer[2]));
    ck_assert_ptr_eq(pool_test_get(&t), c[2]);
    ck_assert_ptr_null(pool_test_get(&t));

    /* pool_fini closes what is still open. */
    pool_test_fini(&t);
}
END_TEST

START_TEST(test_pool_fini_closes)
{
    struct pool_test t;
    int peers[3];

    pool_test_init(&t, POOL_TEST_N, 0);
    for (size_t i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(pool_test_get(&t));
    ck_assert_int_eq(pool_buf_get(&t.p, &t.p.conns[0]), 0);
    memcpy(peers, t.peer, sizeof(peers));
    t.n_peers = 0; /* checked and closed here */
    pool_test_fini(&t);
    for (size_t i = 0; i < 3; i++) {
        ck_assert(pool_test_peer_eof(peers[i]));
        close(peers[i]);
    }
}
END_TEST

/* A key names one use of a connection: after a close, and after the
 * connection is reused, the old key finds nothing. */
START_TEST(test_pool_lookup_generations)
{
    struct pool_test t;
    uint64_t keys[8];
    struct conn *c;

    pool_test_init(&t, 1, 0);
    c = pool_test_get(&t);
    ck_assert_ptr_nonnull(c);
    keys[0] = pool_key(&t.p, c);
    ck_assert_uint_eq(keys[0] >> 63, 0); /* left to the worker */
    ck_assert_ptr_eq(pool_lookup(&t.p, keys[0]), c);
    pool_close(&t.p, c);
    ck_assert_ptr_null(pool_lookup(&t.p, keys[0]));
    for (size_t i = 1; i < 8; i++) {
        ck_assert_ptr_eq(pool_test_get(&t), c); /* the only one */
        keys[i] = pool_key(&t.p, c);
        ck_assert_uint_eq(keys[i] >> 63, 0);
        ck_assert_ptr_eq(pool_lookup(&t.p, keys[i]), c);
        for (size_t j = 0; j < i; j++) {
            ck_assert_uint_ne(keys[i], keys[j]);
            ck_assert_ptr_null(pool_lookup(&t.p, keys[j]));
        }
        pool_close(&t.p, c);
        ck_assert_ptr_null(pool_lookup(&t.p, keys[i]));
    }
    /* An index past the pool. */
    ck_assert_ptr_null(pool_lookup(&t.p, 5));
    ck_assert_ptr_null(pool_lookup(&t.p, UINT32_MAX));
    pool_test_fini(&t);
}
END_TEST

/* The generation wraps within 31 bits: bit 63 stays the worker's, and a
 * key with it set is never a connection's. */
START_TEST(test_pool_lookup_generation_wraps)
{
    struct pool_test t;
    struct conn *c;
    uint64_t key;

    pool_test_init(&t, 1, 0);
    c = pool_test_get(&t);
    c->gen = 0x7fffffff; /* as after 2^31 - 1 closes */
    key = pool_key(&t.p, c);
    ck_assert_uint_eq(key >> 63, 0);
    ck_assert_ptr_eq(pool_lookup(&t.p, key), c);
    ck_assert_ptr_null(pool_lookup(&t.p, key | UINT64_C(1) << 63));
    pool_close(&t.p, c);
    ck_assert_uint_eq(c->gen, 0);
    ck_assert_ptr_null(pool_lookup(&t.p, key));
    ck_assert_ptr_eq(pool_test_get(&t), c);
    ck_assert_uint_eq(pool_key(&t.p, c) >> 63, 0);
    ck_assert_ptr_null(pool_lookup(&t.p, key));
    ck_assert_ptr_null(
        pool_lookup(&t.p, pool_key(&t.p, c) | UINT64_C(1) << 63));
    pool_test_fini(&t);
}
END_TEST

START_TEST(test_pool_lookup_distinct_conns)
{
    struct pool_test t;
    struct conn *a, *b;

    pool_test_init(&t, POOL_TEST_N, 0);
    a = pool_test_get(&t);
    b = pool_test_get(&t);
    ck_assert_uint_ne(pool_key(&t.p, a), pool_key(&t.p, b));
    ck_assert_ptr_eq(pool_lookup(&t.p, pool_key(&t.p, a)), a);
    ck_assert_ptr_eq(pool_lookup(&t.p, pool_key(&t.p, b)), b);
    /* A never-used slot (fd -1) is not found either. */
    ck_assert_ptr_null(pool_lookup(&t.p, 3));
    pool_test_fini(&t);
}
END_TEST

/* --- waiting lists ------------------------------------------------------ */

START_TEST(test_pool_park_lists_order)
{
    struct pool_test t;
    struct conn *c[POOL_TEST_N];

    pool_test_init(&t, POOL_TEST_N, 0);
    for (size_t i = 0; i < POOL_TEST_N; i++)
        c[i] = pool_test_get(&t);
    ck_assert_int_eq(pool_park(&t.p, c[2], CONN_IDLE, 100), 0);
    ck_assert_int_eq(pool_park(&t.p, c[0], CONN_IDLE, 200), 0);
    ck_assert_int_eq(pool_park(&t.p, c[3], CONN_IDLE, 300), 0);
    ck_assert_int_eq(pool_park(&t.p, c[1], CONN_READING, 150), 0);
    {
        struct conn *idle[] = {c[2], c[0], c[3]}, *reading[] = {c[1]};
        pool_test_list_is(&t.p.idle, idle, 3);
        pool_test_list_is(&t.p.reading, reading, 1);
        pool_test_list_is(&t.p.closing, NULL, 0);
    }
    ck_assert_int_eq(c[2]->state, CONN_IDLE);
    ck_assert_uint_eq(c[2]->deadline_ms, 100);
    ck_assert_int_eq(c[1]->state, CONN_READING);
    ck_assert_int_eq(c[1]->in_epoll, 1);

    /* The middle idle one starts reading: out of idle, to reading's end. */
    ck_assert_int_eq(pool_park(&t.p, c[0], CONN_READING, 400), 0);
    /* The head of idle is closing. */
    ck_assert_int_eq(pool_park(&t.p, c[2], CONN_CLOSING, 500), 0);
    {
        struct conn *idle[] = {c[3]}, *reading[] = {c[1], c[0]},
                    *closing[] = {c[2]};
        pool_test_list_is(&t.p.idle, idle, 1);
        pool_test_list_is(&t.p.reading, reading, 2);
        pool_test_list_is(&t.p.closing, closing, 1);
    }
    ck_assert_uint_eq(c[0]->deadline_ms, 400);
    ck_assert_uint_eq(c[2]->deadline_ms, 500);
    pool_test_fini(&t);
}
END_TEST

/* A head that trickles in keeps the deadline of its first byte (a client
 * sending a byte at a time cannot hold a connection forever); one that is
 * served and then starts the next request gets a new deadline. */
START_TEST(test_pool_park_reading_keeps_deadline)
{
    struct pool_test t;
    struct conn *a, *b;

    pool_test_init(&t, POOL_TEST_N, 0);
    a = pool_test_get(&t);
    b = pool_test_get(&t);
    ck_assert_int_eq(pool_park(&t.p, a, CONN_READING, 100), 0);
    ck_assert_int_eq(pool_park(&t.p, b, CONN_READING, 150), 0);
    ck_assert_int_eq(pool_park(&t.p, a, CONN_READING, 900), 0);
    ck_assert_uint_eq(a->deadline_ms, 100);
    {
        struct conn *reading[] = {a, b};
        pool_test_list_is(&t.p.reading, reading, 2);
    }
    ck_assert_uint_eq(pool_next_deadline(&t.p), 100);

    pool_activate(&t.p, a);
    ck_assert_int_eq(a->state, CONN_ACTIVE);
    {
        struct conn *reading[] = {b};
        pool_test_list_is(&t.p.reading, reading, 1);
    }
    ck_assert_int_eq(pool_park(&t.p, a, CONN_READING, 900), 0);
    ck_assert_uint_eq(a->deadline_ms, 900);
    {
        struct conn *reading[] = {b, a};
        pool_test_list_is(&t.p.reading, reading, 2);
    }
    pool_test_fini(&t);
}
END_TEST

/* Idle and closing connections hold no bytes: their buffers go back. */
START_TEST(test_pool_park_releases_buffers)
{
    static const enum conn_state states[] = {CONN_IDLE, CONN_CLOSING};
    struct pool_test t;
    struct conn *c;

    pool_test_init(&t, POOL_TEST_N, 0);
    c = pool_test_get(&t);
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        char *buf;

        pool_activate(&t.p, c);
        ck_assert_int_eq(pool_buf_get(&t.p, c), 0);
        buf = c->buf;
        ck_assert_ptr_nonnull(buf);
        c->len = 5;
        /* Reading: the partial head stays. */
        ck_assert_int_eq(pool_park(&t.p, c, CONN_READING, 100), 0);
        ck_assert_ptr_eq(c->buf, buf);
        ck_assert_uint_eq(c->len, 5);
        ck_assert_uint_eq(c->cap, POOL_TEST_CAP);
        ck_assert_int_eq(pool_park(&t.p, c, states[i], 200), 0);
        ck_assert_ptr_null(c->buf);
        ck_assert_uint_eq(c->len, 0);
        ck_assert_uint_eq(c->cap, 0);
        ck_assert_uint_eq(t.p.n_free_bufs, 1);
        ck_assert_ptr_eq(t.p.free_bufs[0], buf);
    }
    pool_test_fini(&t);
}
END_TEST

START_TEST(test_pool_close_unlinks)
{
    struct pool_test t;
    struct conn *c[3];

    pool_test_init(&t, POOL_TEST_N, 0);
    for (size_t i = 0; i < 3; i++) {
        c[i] = pool_test_get(&t);
        ck_assert_int_eq(pool_park(&t.p, c[i], CONN_IDLE, 100 + i), 0);
    }
    ck_assert_int_eq(pool_buf_get(&t.p, c[1]), 0);
    pool_close(&t.p, c[1]);
    ck_assert_uint_eq(t.p.n_free_bufs, 1); /* its buffer came back */
    {
        struct conn *idle[] = {c[0], c[2]};
        pool_test_list_is(&t.p.idle, idle, 2);
    }
    pool_close(&t.p, c[0]);
    pool_close(&t.p, c[2]);
    pool_test_list_is(&t.p.idle, NULL, 0);
    ck_assert_uint_eq(t.p.used, 0);
    ck_assert_ptr_null(pool_oldest(&t.p));
    ck_assert_uint_eq(pool_next_deadline(&t.p), UINT64_MAX);
    pool_test_fini(&t);
}
END_TEST

START_TEST(test_pool_oldest)
{
    struct pool_test t;
    struct conn *r1, *r2, *i1, *c1;

    pool_test_init(&t, POOL_TEST_N, 0);
    r1 = pool_test_get(&t);
    r2 = pool_test_get(&t);
    i1 = pool_test_get(&t);
    c1 = pool_test_get(&t);
    ck_assert_ptr_null(pool_oldest(&t.p));
    ck_assert_int_eq(pool_park(&t.p, r1, CONN_READING, 10), 0);
    ck_assert_int_eq(pool_park(&t.p, r2, CONN_READING, 20), 0);
    ck_assert_ptr_eq(pool_oldest(&t.p), r1);
    /* Idle before reading, even if it waited less. */
    ck_assert_int_eq(pool_park(&t.p, i1, CONN_IDLE, 1000), 0);
    ck_assert_ptr_eq(pool_oldest(&t.p), i1);
    /* Closing before everything. */
    ck_assert_int_eq(pool_park(&t.p, c1, CONN_CLOSING, 5000), 0);
    ck_assert_ptr_eq(pool_oldest(&t.p), c1);
    pool_close(&t.p, c1);
    ck_assert_ptr_eq(pool_oldest(&t.p), i1);
    pool_activate(&t.p, i1);
    ck_assert_ptr_eq(pool_oldest(&t.p), r1);
    pool_activate(&t.p, r1);
    ck_assert_ptr_eq(pool_oldest(&t.p), r2);
    pool_activate(&t.p, r2);
    ck_assert_ptr_null(pool_oldest(&t.p));
    pool_test_fini(&t);
}
END_TEST

START_TEST(test_pool_next_deadline)
{
    struct pool_test t;
    struct conn *i1, *i2, *r1, *c1;

    pool_test_init(&t, POOL_TEST_N, 0);
    i1 = pool_test_get(&t);
    i2 = pool_test_get(&t);
    r1 = pool_test_get(&t);
    c1 = pool_test_get(&t);
    ck_assert_uint_eq(pool_next_deadline(&t.p), UINT64_MAX);
    ck_assert_int_eq(pool_park(&t.p, i1, CONN_IDLE, 300), 0);
    ck_assert_uint_eq(pool_next_deadline(&t.p), 300);
    ck_assert_int_eq(pool_park(&t.p, i2, CONN_IDLE, 350), 0);
    ck_assert_int_eq(pool_park(&t.p, c1, CONN_CLOSING, 400), 0);
    ck_assert_uint_eq(pool_next_deadline(&t.p), 300);
    ck_assert_int_eq(pool_park(&t.p, r1, CONN_READING, 200), 0);
    ck_assert_uint_eq(pool_next_deadline(&t.p), 200);
    pool_activate(&t.p, r1);
    ck_assert_uint_eq(pool_next_deadline(&t.p), 300);
    pool_activate(&t.p, i1);
    ck_assert_uint_eq(pool_next_deadline(&t.p), 350);
    pool_activate(&t.p, i2);
    ck_assert_uint_eq(pool_next_deadline(&t.p), 400);
    pool_activate(&t.p, c1);
    ck_assert_uint_eq(pool_next_deadline(&t.p), UINT64_MAX);
    pool_test_fini(&t);
}
END_TEST

/* --- buffers ------------------------------------------------------------ */

START_TEST(test_pool_buf_lifo)
{
    struct pool_test t;
    struct conn *a, *b, *c;
    char *ba, *bb;

    pool_test_init(&t, POOL_TEST_N, 0);
    a = pool_test_get(&t);
    b = pool_test_get(&t);
    c = pool_test_get(&t);
    ck_assert_int_eq(pool_buf_get(&t.p, a), 0);
    ck_assert_int_eq(pool_buf_get(&t.p, b), 0);
    ba = a->buf;
    bb = b->buf;
    ck_assert_ptr_nonnull(ba);
    ck_assert_ptr_nonnull(bb);
    ck_assert_ptr_ne(ba, bb);
    ck_assert_uint_eq(a->cap, POOL_TEST_CAP);
    ck_assert_uint_eq(a->len, 0);
    memset(ba, 'a', POOL_TEST_CAP); /* ASan: all of cap is ours */
    memset(bb, 'b', POOL_TEST_CAP);
    /* Already lent: no-op. */
    a->len = 3;
    ck_assert_int_eq(pool_buf_get(&t.p, a), 0);
    ck_assert_ptr_eq(a->buf, ba);
    ck_assert_uint_eq(a->len, 3);

    pool_buf_put(&t.p, a);
    ck_assert_ptr_null(a->buf);
    ck_assert_uint_eq(a->len, 0);
    ck_assert_uint_eq(a->cap, 0);
    pool_buf_put(&t.p, b);
    ck_assert_uint_eq(t.p.n_free_bufs, 2);
    pool_buf_put(&t.p, b); /* none lent: no-op */
    ck_assert_uint_eq(t.p.n_free_bufs, 2);

    /* The most recently returned is lent first. */
    ck_assert_int_eq(pool_buf_get(&t.p, c), 0);
    ck_assert_ptr_eq(c->buf, bb);
    ck_assert_uint_eq(c->len, 0);
    ck_assert_uint_eq(c->cap, POOL_TEST_CAP);
    ck_assert_int_eq(pool_buf_get(&t.p, a), 0);
    ck_assert_ptr_eq(a->buf, ba);
    ck_assert_uint_eq(t.p.n_free_bufs, 0);
    pool_test_fini(&t);
}
END_TEST

/* Every connection can hold a buffer at once; returned buffers are all
 * kept (pool_fini frees them: ASan's leak check sees any loss). */
START_TEST(test_pool_buf_all_lent)
{
    struct pool_test t;
    struct conn *c[POOL_TEST_N];

    pool_test_init(&t, POOL_TEST_N, 0);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < POOL_TEST_N; i++) {
            if (round == 0)
                c[i] = pool_test_get(&t);
            ck_assert_int_eq(pool_buf_get(&t.p, c[i]), 0);
            memset(c[i]->buf, 'x', c[i]->cap);
        }
        ck_assert_uint_eq(t.p.n_free_bufs, 0);
        for (size_t i = 0; i < POOL_TEST_N; i++)
            pool_buf_put(&t.p, c[i]);
        ck_assert_uint_eq(t.p.n_free_bufs, POOL_TEST_N);
    }
    pool_test_fini(&t);
}
END_TEST

/* --- epoll -------------------------------------------------------------- */

/* Sync workers: added once, level-triggered; the event carries the key. */
START_TEST(test_pool_epoll_level)
{
    struct pool_test t;
    struct conn *c;
    uint64_t keys[8];

    pool_test_init(&t, POOL_TEST_N, 0);
    c = pool_test_get(&t);
    ck_assert_int_eq(pool_park(&t.p, c, CONN_IDLE, 100), 0);
    ck_assert_int_eq(c->in_epoll, 1);
    ck_assert_int_eq(pool_test_events(&t, keys, 0), 0);
    ck_assert_int_eq(write(t.peer[0], "x", 1), 1);
    ck_assert_int_eq(pool_test_events(&t, keys, 1000), 1);
    ck_assert_uint_eq(keys[0], pool_key(&t.p, c));
    ck_assert_ptr_eq(pool_lookup(&t.p, keys[0]), c);
    /* Unread bytes: reported again without re-arming. */
    ck_assert_int_eq(pool_test_events(&t, keys, 0), 1);
    /* Parked again (already in the set): no error (EEXIST) either. */
    pool_activate(&t.p, c);
    ck_assert_int_eq(pool_park(&t.p, c, CONN_READING, 200), 0);
    ck_assert_int_eq(pool_test_events(&t, keys, 0), 1);
    pool_test_fini(&t);
}
END_TEST

/* Threads mode: an event disarms the connection until it is parked
 * again, so that two threads never serve it at once. */
START_TEST(test_pool_epoll_oneshot)
{
    struct pool_test t;
    struct conn *c;
    uint64_t keys[8];

    pool_test_init(&t, POOL_TEST_N, 1);
    c = pool_test_get(&t);
    ck_assert_int_eq(pool_park(&t.p, c, CONN_IDLE, 100), 0);
    ck_assert_int_eq(write(t.peer[0], "x", 1), 1);
    ck_assert_int_eq(pool_test_events(&t, keys, 1000), 1);
    ck_assert_uint_eq(keys[0], pool_key(&t.p, c));
    /* Consumed: not reported again, although the byte is still there. */
    ck_assert_int_eq(pool_test_events(&t, keys, 0), 0);
    ck_assert_int_eq(write(t.peer[0], "y", 1), 1);
    ck_assert_int_eq(pool_test_events(&t, keys, 50), 0);
    /* Parked again: re-armed. */
    pool_activate(&t.p, c);
    ck_assert_int_eq(pool_park(&t.p, c, CONN_READING, 200), 0);
    ck_assert_int_eq(pool_test_events(&t, keys, 1000), 1);
    ck_assert_uint_eq(keys[0], pool_key(&t.p, c));
    ck_assert_int_eq(pool_test_events(&t, keys, 0), 0);
    /* Parked in the state it is in (a head still arriving): re-armed too,
     * and the first deadline stays. */
    ck_assert_int_eq(pool_park(&t.p, c, CONN_READING, 900), 0);
    ck_assert_uint_eq(c->deadline_ms, 200);
    ck_assert_int_eq(pool_test_events(&t, keys, 1000), 1);
    ck_assert_int_eq(pool_test_events(&t, keys, 0), 0);
    pool_test_fini(&t);
}
END_TEST

/* A closed connection leaves the set; reused, it is watched with its new
 * key, so an event never carries a stale one. */
START_TEST(test_pool_epoll_reuse)
{
    for (int oneshot = 0; oneshot <= 1; oneshot++) {
        struct pool_test t;
        struct conn *c;
        uint64_t keys[8], old;

        pool_test_init(&t, 1, oneshot);
        c = pool_test_get(&t);
        ck_assert_int_eq(pool_park(&t.p, c, CONN_IDLE, 100), 0);
        old = pool_key(&t.p, c);
        pool_close(&t.p, c);
        ck_assert_int_eq(c->in_epoll, 0);
        ck_assert_ptr_eq(pool_test_get(&t), c);
        ck_assert_int_eq(pool_park(&t.p, c, CONN_IDLE, 100), 0);
        ck_assert_int_eq(write(t.peer[1], "x", 1), 1);
        ck_assert_int_eq(pool_test_events(&t, keys, 1000), 1);
        ck_assert_uint_ne(keys[0], old);
        ck_assert_uint_eq(keys[0], pool_key(&t.p, c));
        ck_assert_ptr_eq(pool_lookup(&t.p, keys[0]), c);
        pool_test_fini(&t);
    }
}
END_TEST

/* epoll_ctl refuses a regular file: -1, and the connection is in no
 * list. */
START_TEST(test_pool_park_epoll_fails)
{
    char path[] = "/tmp/forkd-test-pool-XXXXXX";
    struct pool_test t;
    struct conn *c;
    int fd;

    pool_test_init(&t, POOL_TEST_N, 0);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    (void)unlink(path); /* only the descriptor is needed */
    c = pool_get(&t.p, fd);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(pool_park(&t.p, c, CONN_IDLE, 100), -1);
    ck_assert_int_eq(c->in_epoll, 0);
    ck_assert_ptr_null(t.p.idle.head);
    ck_assert_ptr_null(pool_oldest(&t.p));
    pool_close(&t.p, c);
    pool_test_fini(&t);
}
END_TEST

static Suite *
pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *conns = tcase_create("conns");
    TCase *lists = tcase_create("lists");
    TCase *bufs = tcase_create("bufs");
    TCase *ep = tcase_create("epoll");

    tcase_add_test(conns, test_pool_init_fini);
    tcase_add_test(conns, test_pool_get_until_null);
    tcase_add_test(conns, test_pool_fini_closes);
    tcase_add_test(conns, test_pool_lookup_generations);
    tcase_add_test(conns, test_pool_lookup_generation_wraps);
    tcase_add_test(conns, test_pool_lookup_distinct_conns);
    suite_add_tcase(s, conns);

    tcase_add_test(lists, test_pool_park_lists_order);
    tcase_add_test(lists, test_pool_park_reading_keeps_deadline);
    tcase_add_test(lists, test_pool_park_releases_buffers);
    tcase_add_test(lists, test_pool_close_unlinks);
    tcase_add_test(lists, test_pool_oldest);
    tcase_add_test(lists, test_pool_next_deadline);
    suite_add_tcase(s, lists);

    tcase_add_test(bufs, test_pool_buf_lifo);
    tcase_add_test(bufs, test_pool_buf_all_lent);
    suite_add_tcase(s, bufs);

    tcase_add_test(ep, test_pool_epoll_level);
    tcase_add_test(ep, test_pool_epoll_oneshot);
    tcase_add_test(ep, test_pool_epoll_reuse);
    tcase_add_test(ep, test_pool_park_epoll_fails);
    suite_add_tcase(s, ep);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(pool_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
