#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Keys: index in the low 32 bits, generation in the next 31; bit 63 is
 * left clear for the worker's own (non-connection) events. */
#define POOL_GEN_MASK 0x7fffffffu

#define POOL_PREFAULT 64

/* Touch every page of buf[0..len): calloc's zero pages are not yet ours. */
static void
pool_prefault(void *buf, size_t len)
{
    volatile char *b = buf;

    for (size_t i = 0; i < len; i += 4096)
        b[i] = 0;
    if (len > 0)
        b[len - 1] = 0;
}

int
pool_init(struct pool *p, size_t n, size_t buf_cap, int ep, int oneshot)
{
    memset(p, 0, sizeof(*p));
    p->conns = calloc(n, sizeof(*p->conns));
    p->free_bufs = calloc(n, sizeof(*p->free_bufs));
    if (p->conns == NULL || p->free_bufs == NULL) {
        free(p->conns);
        free(p->free_bufs);
        errno = ENOMEM;
        return -1;
    }
    p->n = n;
    p->buf_cap = buf_cap;
    p->ep = ep;
    p->oneshot = oneshot;
    /* Connections past p->fresh were never used: calloc's untouched pages
     * cost no memory until a worker really holds that many.  The first
     * POOL_PREFAULT are faulted in now (about 14 kB), so that a worker's
     * Rss does not creep up with the most connections it has held at once
     * (a leak would look the same) under ordinary loads. */
    p->fresh = 0;
    pool_prefault(p->conns,
                  (n < POOL_PREFAULT ? n : POOL_PREFAULT) * sizeof(*p->conns));
    return 0;
}

static struct pool_list *
pool_list_of(struct pool *p, const struct conn *c)
{
    switch (c->state) {
    case CONN_IDLE:
        return &p->idle;
    case CONN_READING:
        return &p->reading;
    case CONN_CLOSING:
        return &p->closing;
    case CONN_DRAINING:
        return &p->draining;
    case CONN_SENDING:
        return &p->sending;
    default:
        return NULL;
    }
}

static void
pool_list_remove(struct pool_list *l, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void
pool_list_append(struct pool_list *l, struct conn *c)
{
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

void
pool_fini(struct pool *p)
{
    for (size_t i = 0; p->conns && i < p->fresh; i++)
        if (p->conns[i].fd >= 0)
            pool_close(p, &p->conns[i]);
    for (size_t i = 0; i < p->n_free_bufs; i++)
        free(p->free_bufs[i]);
    free(p->free_bufs);
    free(p->conns);
    memset(p, 0, sizeof(*p));
}

struct conn *
pool_get(struct pool *p, int fd)
{
    struct conn *c = p->free;
    uint32_t index, gen;

    if (c == NULL && p->fresh < p->n) {
        c = &p->conns[p->fresh];
        c->index = (uint32_t)p->fresh++;
        c->next = NULL;
    }
    if (c == NULL)
        return NULL;
    p->free = c->next;
    p->used++;
    index = c->index;
    gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->index = index;
    c->gen = gen;
    c->fd = fd;
    c->state = CONN_FREE; /* in no list until parked or activated */
    return c;
}

void
pool_close(struct pool *p, struct conn *c)
{
    struct pool_list *l = pool_list_of(p, c);

    if (l)
        pool_list_remove(l, c);
    close(c->fd); /* also leaves the epoll set */
    pool_buf_put(p, c);
    c->fd = -1;
    c->state = CONN_FREE;
    c->in_epoll = 0;
    c->gen = (c->gen + 1) & POOL_GEN_MASK; /* stale events miss it */
    c->next = p->free;
    p->free = c;
    p->used--;
}

/* Buffers are allocated on first need and then reused, most recently used
 * first, so a busy worker touches few of them. */
int
pool_buf_get(struct pool *p, struct conn *c)
{
    if (c->buf)
        return 0;
    if (p->n_free_bufs > 0)
        c->buf = p->free_bufs[--p->n_free_bufs];
    else if ((c->buf = malloc(p->buf_cap)) == NULL)
        return -1;
    c->cap = p->buf_cap;
    c->len = 0;
    return 0;
}

void
pool_buf_put(struct pool *p, struct conn *c)
{
    if (c->buf == NULL)
        return;
    p->free_bufs[p->n_free_bufs++] = c->buf;
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* Watch c for events: added once, changed when they change; in threads
 * mode re-armed after every event. */
static int
pool_watch(struct pool *p, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events | (p->oneshot ? EPOLLONESHOT : 0),
                             .data.u64 = pool_key(p, c)};

    if (c->in_epoll && !p->oneshot && c->ep_events == events)
        return 0;
    c->ep_events = events;
    if (epoll_ctl(p->ep, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
                  &ev) < 0)
        return -1;
    c->in_epoll = 1;
    return 0;
}

int
pool_park(struct pool *p, struct conn *c, enum conn_state state,
          uint64_t deadline_ms)
{
    struct pool_list *l = pool_list_of(p, c);

    if (pool_watch(p, c, state == CONN_SENDING ? EPOLLOUT : EPOLLIN) < 0)
        return -1;
    if (l && c->state == state)
        return 0;
    if (l)
        pool_list_remove(l, c);
    c->state = state;
    c->deadline_ms = deadline_ms;
    if (state != CONN_READING && state != CONN_SENDING)
        pool_buf_put(p, c); /* the others hold no bytes */
    pool_list_append(pool_list_of(p, c), c);
    return 0;
}

void
pool_activate(struct pool *p, struct conn *c)
{
    struct pool_list *l = pool_list_of(p, c);

    if (l)
        pool_list_remove(l, c);
    c->state = CONN_ACTIVE;
}

struct conn *
pool_oldest(struct pool *p)
{
    const struct pool_list *order[] = {&p->closing, &p->idle, &p->draining,
                                       &p->sending, &p->reading};

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (order[i]->head)
            return order[i]->head;
    return NULL;
}

uint64_t
pool_next_deadline(const struct pool *p)
{
    uint64_t next = UINT64_MAX;
    const struct conn *heads[] = {p->idle.head, p->reading.head,
                                  p->closing.head, p->draining.head,
                                  p->sending.head};

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
        if (heads[i] && heads[i]->deadline_ms < next)
            next = heads[i]->deadline_ms;
    return next;
}

uint64_t
pool_key(const struct pool *p, const struct conn *c)
{
    (void)p;
    return (uint64_t)c->gen << 32 | c->index;
}

struct conn *
pool_lookup(struct pool *p, uint64_t key)
{
    uint32_t index = (uint32_t)key;
    struct conn *c;

    if (index >= p->fresh)
        return NULL;
    c = &p->conns[index];
    return c->fd >= 0 && c->gen == (uint32_t)(key >> 32) ? c : NULL;
}
