#include "spread.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handoff.h"

int
spread_open(int inbox[2])
{
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                      inbox);
}

unsigned
spread_load(const struct sb_slot *s)
{
    uint64_t sent = __atomic_load_n(&s->inbox_sent, __ATOMIC_RELAXED);
    uint64_t taken = __atomic_load_n(&s->inbox_taken, __ATOMIC_RELAXED);
    /* taken runs ahead of sent when the slot was reset with a message
     * still in the inbox: none is on its way then. */
    uint64_t coming = sent > taken ? sent - taken : 0;

    return s->conns + (unsigned)(coming > 1000000 ? 1000000 : coming);
}

/* Whether a thread of slot i is free or only just began a request. */
static int
spread_has_room(const struct sb *board, size_t i, uint64_t now_ms,
                uint64_t busy_ms)
{
    const struct sb_slot *s = &board->slots[i];
    size_t nt =
        s->n_threads < board->n_threads ? s->n_threads : board->n_threads;

    for (size_t t = 0; t < nt; t++) {
        uint64_t since = sb_thread(board, i, t)->req_start_ms;
        /* (busy_ms may be UINT64_MAX: no sum that could wrap) */
        if (since == 0 || now_ms < since || now_ms - since < busy_ms)
            return 1;
    }
    return 0;
}

int
spread_pick(const struct sb *board, const int (*inbox)[2], size_t n, size_t me,
            unsigned mine, uint64_t now_ms, uint64_t busy_ms)
{
    int best = -1;
    unsigned best_load = mine < 2 ? 0 : mine - 1; /* two fewer, at least */

    if (n > board->n_slots)
        n = board->n_slots;
    for (size_t i = 0; i < n && mine >= 2; i++) {
        const struct sb_slot *s = &board->slots[i];
        unsigned load;
        if (i == me || inbox[i][0] < 0 || s->pid <= 0 || s->state != SB_IDLE ||
            !s->inbox || (load = spread_load(s)) >= best_load ||
            !spread_has_room(board, i, now_ms, busy_ms))
            continue;
        best = (int)i;
        best_load = load;
    }
    return best;
}

unsigned
spread_rescue(int rx, int tx)
{
    struct handoff_meta meta;
    char none[1];
    unsigned n = 0;
    int fd;

    for (;;) {
        /* An inbox message carries no request bytes: one that does is
         * dropped by handoff_recv, which closes its descriptor. */
        if (handoff_recv(rx, &fd, &meta, none, 0) < 0) {
            if (errno == EPROTO || errno == EMFILE)
                continue; /* that message is gone, the next may not be */
            return n;
        }
        meta.len = 0;
        if (handoff_send(tx, fd, &meta, NULL) == 0)
            n++;
        close(fd);
    }
}
