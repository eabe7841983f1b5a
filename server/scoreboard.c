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

void
sb_busy(struct sb_thread *t, const char *method, const char *target,
        uint64_t now_ms)
{
    size_t m = strlen(method), room = sizeof(t->request) - 1;

    /* Not snprintf: this runs for every request. */
    if (m > room)
        m = room;
    memcpy(t->request, method, m);
    if (m < room)
        t->request[m++] = ' ';
    size_t k = strnlen(target, room - m);
    memcpy(t->request + m, target, k);
    t->request[m + k] = '\0';
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
