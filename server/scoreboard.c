#include "scoreboard.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

struct sb_slot *
sb_new(size_t n)
{
    void *p = mmap(NULL, n * sizeof(struct sb_slot), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

void
sb_free(struct sb_slot *sb, size_t n)
{
    if (sb)
        munmap(sb, n * sizeof(*sb));
}

uint64_t
sb_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
sb_busy(struct sb_slot *s, const char *method, const char *target)
{
    uint64_t now = sb_now_ms();

    snprintf(s->request, sizeof(s->request), "%s %s", method, target);
    s->req_start_ms = now;
    s->heartbeat_ms = now;
    s->state = SB_BUSY;
}

void
sb_idle(struct sb_slot *s)
{
    s->requests++;
    s->heartbeat_ms = sb_now_ms();
    s->state = SB_IDLE;
    s->req_start_ms = 0;
}
