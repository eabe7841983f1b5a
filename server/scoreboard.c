#include "scoreboard.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

int
sb_open(struct sb *sb, size_t n_slots, size_t n_threads)
{
    size_t slots = n_slots * sizeof(struct sb_slot);
    size_t len = slots + n_slots * n_threads * sizeof(struct sb_thread);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    sb->slots = p;
    sb->threads = (struct sb_thread *)((char *)p + slots);
    sb->n_slots = n_slots;
    sb->n_threads = n_threads;
    return 0;
}

void
sb_close(struct sb *sb)
{
    if (sb->slots)
        munmap(sb->slots,
               sb->n_slots * (sizeof(struct sb_slot) +
                              sb->n_threads * sizeof(struct sb_thread)));
    memset(sb, 0, sizeof(*sb));
}

struct sb_thread *
sb_thread(const struct sb *sb, size_t i, size_t t)
{
    return &sb->threads[i * sb->n_threads + t];
}

void
sb_reset(struct sb *sb, size_t i)
{
    memset(&sb->slots[i], 0, sizeof(sb->slots[i]));
    memset(sb_thread(sb, i, 0), 0, sb->n_threads * sizeof(struct sb_thread));
}

uint64_t
sb_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const uint64_t sb_bounds[SB_HIST_N - 1] = {SB_HIST_BOUNDS};

uint64_t
sb_hist_bound(unsigned i)
{
    return i < SB_HIST_N - 1 ? sb_bounds[i] : 0;
}

void
sb_count(struct sb_counts *c, int status, uint64_t bytes, uint64_t dur_us)
{
    unsigned b = 0;

    /* A linear scan: the fast requests stop at once. */
    while (b < SB_HIST_N - 1 && dur_us > sb_bounds[b])
        b++;
    c->hist[b]++;
    c->dur_us += dur_us;
    c->bytes += bytes;
    if (status >= 100 && status < 600)
        c->status[status / 100 - 1]++;
    c->requests++;
}

void
sb_add_counts(struct sb_counts *sum, const struct sb_counts *c)
{
    sum->requests += c->requests;
    sum->bytes += c->bytes;
    sum->dur_us += c->dur_us;
    for (unsigned i = 0; i < 5; i++)
        sum->status[i] += c->status[i];
    for (unsigned i = 0; i < SB_HIST_N; i++)
        sum->hist[i] += c->hist[i];
}

void
sb_busy(struct sb_thread *t, const char *method, const char *target,
        const char *remote, uint64_t now_ms)
{
    size_t m = strlen(method), room = sizeof(t->request) - 1;
    size_t r = strnlen(remote, sizeof(t->remote) - 1);

    /* Not snprintf: this runs for every request. */
    if (m > room)
        m = room;
    memcpy(t->request, method, m);
    if (m < room)
        t->request[m++] = ' ';
    size_t k = strnlen(target, room - m);
    memcpy(t->request + m, target, k);
    t->request[m + k] = '\0';
    memcpy(t->remote, remote, r);
    t->remote[r] = '\0';
    t->req_start_ms = now_ms ? now_ms : 1;
}

void
sb_idle(struct sb_slot *s, struct sb_thread *t)
{
    t->req_start_ms = 0;
    __atomic_fetch_add(&s->requests, 1, __ATOMIC_RELAXED);
}

unsigned
sb_idle_threads(const struct sb *sb, size_t except)
{
    unsigned n = 0;

    for (size_t i = 0; i < sb->n_slots; i++) {
        const struct sb_slot *s = &sb->slots[i];
        size_t nt = s->n_threads < sb->n_threads ? s->n_threads : sb->n_threads;
        if (i == except || s->pid <= 0 || s->state != SB_IDLE)
            continue;
        for (size_t t = 0; t < nt; t++)
            n += sb_thread(sb, i, t)->req_start_ms == 0;
    }
    return n;
}
