/* test_spread: which worker a new connection goes to (spread_pick), the
 * load a slot shows (spread_load) and the master's rescue of an inbox
 * whose worker has gone (spread_rescue). */
#include "spread.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handoff.h"

#define N 4
#define BUSY_MS 5
#define NOW 100000

static struct sb board;
static int inbox[N][2];

/* N serving workers of one thread each, all idle, none holding a
 * connection, each with an inbox this worker can send to. */
static void
setup(void)
{
    ck_assert_int_eq(sb_open(&board, N, 2), 0);
    for (int i = 0; i < N; i++) {
        board.slots[i].pid = 100 + i;
        board.slots[i].state = SB_IDLE;
        board.slots[i].inbox = 1;
        board.slots[i].n_threads = 1;
        inbox[i][0] = 10 + i; /* never used as descriptors here */
        inbox[i][1] = 20 + i;
    }
}

static void
teardown(void)
{
    sb_close(&board);
}

static int
pick(size_t me, unsigned mine)
{
    return spread_pick(&board, (const int(*)[2])inbox, N, me, mine, NOW,
                       BUSY_MS);
}

START_TEST(test_spread_keeps_when_even)
{
    /* One more than the others is even enough: moving it would only
     * move the difference. */
    for (int i = 1; i < N; i++)
        board.slots[i].conns = 3;
    ck_assert_int_eq(pick(0, 4), -1);
    ck_assert_int_eq(pick(0, 1), -1);
    board.slots[2].conns = 2;
    ck_assert_int_eq(pick(0, 4), 2);
}
END_TEST

START_TEST(test_spread_least_loaded)
{
    board.slots[1].conns = 5;
    board.slots[2].conns = 1;
    board.slots[3].conns = 3;
    ck_assert_int_eq(pick(0, 6), 2);
    /* A worker with no connection at all, and one of two: 0 wins. */
    ck_assert_int_eq(pick(1, 5), 0);
    /* Never itself, however few its slot shows. */
    board.slots[0].conns = 0;
    ck_assert_int_eq(pick(0, 2), -1);
    ck_assert_int_eq(pick(0, 6), 2);
}
END_TEST

START_TEST(test_spread_counts_those_on_their_way)
{
    for (int i = 1; i < N; i++)
        board.slots[i].conns = 2;
    board.slots[1].conns = 0;
    ck_assert_int_eq(pick(0, 3), 1);
    /* Two sent to slot 1 and not yet taken: it holds as many as the
     * others now. */
    board.slots[1].inbox_sent = 7;
    board.slots[1].inbox_taken = 5;
    ck_assert_uint_eq(spread_load(&board.slots[1]), 2);
    ck_assert_int_eq(pick(0, 3), -1);
    /* Taken ahead of sent (the slot was reset with one in the inbox):
     * none on its way. */
    board.slots[1].inbox_sent = 0;
    board.slots[1].inbox_taken = 1;
    ck_assert_uint_eq(spread_load(&board.slots[1]), 0);
    ck_assert_int_eq(pick(0, 3), 1);
}
END_TEST

START_TEST(test_spread_only_serving_readers)
{
    board.slots[0].conns = 9;
    /* Every other slot is out for one reason. */
    board.slots[1].state = SB_STOPPING;
    board.slots[2].inbox = 0;
    inbox[3][0] = -1;
    ck_assert_int_eq(pick(0, 10), -1);
    board.slots[2].inbox = 1;
    ck_assert_int_eq(pick(0, 10), 2);
    board.slots[2].state = SB_BOOTING;
    ck_assert_int_eq(pick(0, 10), -1);
    board.slots[2].state = SB_IDLE;
    board.slots[2].pid = 0;
    ck_assert_int_eq(pick(0, 10), -1);
    /* Slots past n are not looked at. */
    board.slots[2].pid = 102;
    ck_assert_int_eq(
        spread_pick(&board, (const int(*)[2])inbox, 2, 0, 10, NOW, BUSY_MS),
        -1);
}
END_TEST

START_TEST(test_spread_not_to_a_stuck_worker)
{
    for (int i = 2; i < N; i++)
        board.slots[i].state = SB_STOPPING;
    /* Slot 1's one thread in a request for longer than BUSY_MS: it takes
     * nothing new (DESIGN 2). */
    sb_thread(&board, 1, 0)->req_start_ms = NOW - BUSY_MS;
    ck_assert_int_eq(pick(0, 5), -1);
    /* A request that has only begun is no reason. */
    sb_thread(&board, 1, 0)->req_start_ms = NOW - BUSY_MS + 1;
    ck_assert_int_eq(pick(0, 5), 1);
    /* Two threads, one stuck and one free: room. */
    sb_thread(&board, 1, 0)->req_start_ms = NOW - 1000;
    board.slots[1].n_threads = 2;
    ck_assert_int_eq(pick(0, 5), 1);
    sb_thread(&board, 1, 1)->req_start_ms = NOW - 1000;
    ck_assert_int_eq(pick(0, 5), -1);
}
END_TEST

/* A connection and its client's end, as a worker would hold it. */
static void
spread_test_conn(int *ours, int *peer)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *ours = sv[0];
    *peer = sv[1];
}

START_TEST(test_spread_rescue)
{
    int box[2], queue[2], ours[3], peer[3], fd;
    struct handoff_meta meta;
    char buf[64];

    ck_assert_int_eq(spread_open(box), 0);
    ck_assert_int_eq(handoff_open(queue), 0);
    ck_assert_uint_eq(spread_rescue(box[1], queue[0]), 0);
    for (int i = 0; i < 3; i++) {
        memset(&meta, 0, sizeof(meta));
        meta.listener = (uint32_t)i;
        snprintf(meta.remote_port, sizeof(meta.remote_port), "%d", 4000 + i);
        spread_test_conn(&ours[i], &peer[i]);
        /* The second carries request bytes, which no inbox message does:
         * dropped, its descriptor closed. */
        meta.len = i == 1 ? 3 : 0;
        ck_assert_int_eq(handoff_send(box[0], ours[i], &meta, "GET"), 0);
        close(ours[i]);
    }
    ck_assert_uint_eq(spread_rescue(box[1], queue[0]), 2);
    for (int i = 0; i < 3; i += 2) {
        ck_assert_int_eq(handoff_recv(queue[1], &fd, &meta, buf, sizeof(buf)),
                         0);
        ck_assert_uint_eq(meta.listener, (unsigned)i);
        ck_assert_uint_eq(meta.len, 0);
        snprintf(buf, sizeof(buf), "%d", 4000 + i);
        ck_assert_str_eq(meta.remote_port, buf);
        /* The same connection: what its client sends arrives. */
        ck_assert_int_eq(write(peer[i], "x", 1), 1);
        ck_assert_int_eq(read(fd, buf, 1), 1);
        ck_assert_int_eq(buf[0], 'x');
        close(fd);
    }
    ck_assert_int_eq(handoff_recv(queue[1], &fd, &meta, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    /* The dropped one's client sees its connection closed. */
    ck_assert_int_eq(read(peer[1], buf, 1), 0);
    for (int i = 0; i < 3; i++)
        close(peer[i]);
    for (int i = 0; i < 2; i++) {
        close(box[i]);
        close(queue[i]);
    }
}
END_TEST

START_TEST(test_spread_open_flags)
{
    int box[2], type = 0;
    socklen_t len = sizeof(type);

    ck_assert_int_eq(spread_open(box), 0);
    ck_assert_int_eq(getsockopt(box[0], SOL_SOCKET, SO_TYPE, &type, &len), 0);
    ck_assert_int_eq(type, SOCK_SEQPACKET);
    ck_assert_int_eq(recv(box[1], &type, 1, 0), -1); /* non-blocking */
    ck_assert_int_eq(errno, EAGAIN);
    close(box[0]);
    close(box[1]);
}
END_TEST

static Suite *
spread_suite(void)
{
    Suite *s = suite_create("spread");
    TCase *tc = tcase_create("spread");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_spread_keeps_when_even);
    tcase_add_test(tc, test_spread_least_loaded);
    tcase_add_test(tc, test_spread_counts_those_on_their_way);
    tcase_add_test(tc, test_spread_only_serving_readers);
    tcase_add_test(tc, test_spread_not_to_a_stuck_worker);
    tcase_add_test(tc, test_spread_rescue);
    tcase_add_test(tc, test_spread_open_flags);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(spread_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
