/* test_scoreboard: the shared slots and thread entries: their layout, reset
 * of one worker's slot, what a thread writes when it starts and ends a
 * request, and that a forked child's writes are what the parent reads. */
#include "scoreboard.h"

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SB_TEST_SLOTS 4
#define SB_TEST_THREADS 3

static int
sb_test_is_zero(const void *p, size_t len)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < len; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

START_TEST(test_sb_open_zeroed)
{
    struct sb sb;

    ck_assert_int_eq(sb_open(&sb, SB_TEST_SLOTS, SB_TEST_THREADS), 0);
    ck_assert_ptr_nonnull(sb.slots);
    ck_assert_ptr_nonnull(sb.threads);
    ck_assert_uint_eq(sb.n_slots, SB_TEST_SLOTS);
    ck_assert_uint_eq(sb.n_threads, SB_TEST_THREADS);
    ck_assert(sb_test_is_zero(sb.slots, SB_TEST_SLOTS * sizeof(sb.slots[0])));
    ck_assert(sb_test_is_zero(sb.threads, SB_TEST_SLOTS * SB_TEST_THREADS *
                                              sizeof(sb.threads[0])));
    for (size_t i = 0; i < SB_TEST_SLOTS; i++)
        ck_assert_int_eq(sb.slots[i].state, SB_EMPTY);
    sb_close(&sb);
    ck_assert_ptr_null(sb.slots);
    ck_assert_ptr_null(sb.threads);
    ck_assert_uint_eq(sb.n_slots, 0);
    sb_close(&sb); /* closed: no-op */
}
END_TEST

/* Every (slot, thread) has its own entry, inside the mapping, and writing
 * one changes no other. */
START_TEST(test_sb_thread_indexing)
{
    struct sb sb;
    const size_t total = SB_TEST_SLOTS * SB_TEST_THREADS;

    ck_assert_int_eq(sb_open(&sb, SB_TEST_SLOTS, SB_TEST_THREADS), 0);
    for (size_t i = 0; i < SB_TEST_SLOTS; i++) {
        for (size_t t = 0; t < SB_TEST_THREADS; t++) {
            struct sb_thread *e = sb_thread(&sb, i, t);
            ck_assert(e >= sb.threads && e < sb.threads + total);
            ck_assert_uint_eq((size_t)(e - sb.threads),
                              i * SB_TEST_THREADS + t);
            e->req_start_ms = 1000 * (i + 1) + t;
            memset(e->request, (int)('a' + i * SB_TEST_THREADS + t),
                   SB_REQUEST_MAX);
        }
    }
    for (size_t i = 0; i < SB_TEST_SLOTS; i++) {
        for (size_t t = 0; t < SB_TEST_THREADS; t++) {
            struct sb_thread *e = sb_thread(&sb, i, t);
            ck_assert_uint_eq(e->req_start_ms, 1000 * (i + 1) + t);
            for (size_t k = 0; k < SB_REQUEST_MAX; k++)
                ck_assert_int_eq(e->request[k],
                                 (int)('a' + i * SB_TEST_THREADS + t));
        }
    }
    sb_close(&sb);
}
END_TEST

/* One worker's slot is cleared for its replacement; the others, and
 * their threads, are untouched. */
START_TEST(test_sb_reset_one_slot)
{
    struct sb sb;

    ck_assert_int_eq(sb_open(&sb, SB_TEST_SLOTS, SB_TEST_THREADS), 0);
    for (size_t i = 0; i < SB_TEST_SLOTS; i++) {
        sb.slots[i].pid = (pid_t)(100 + i);
        sb.slots[i].state = SB_IDLE;
        sb.slots[i].heartbeat_ms = 5000 + i;
        sb.slots[i].requests = 10 + i;
        for (size_t t = 0; t < SB_TEST_THREADS; t++)
            sb_busy(sb_thread(&sb, i, t), "GET", "/x", "192.0.2.1", 7000 + i);
    }
    sb_reset(&sb, 1);
    ck_assert(sb_test_is_zero(&sb.slots[1], sizeof(sb.slots[1])));
    ck_assert(sb_test_is_zero(sb_thread(&sb, 1, 0),
                              SB_TEST_THREADS * sizeof(struct sb_thread)));
    for (size_t i = 0; i < SB_TEST_SLOTS; i++) {
        if (i == 1)
            continue;
        ck_assert_int_eq(sb.slots[i].pid, (pid_t)(100 + i));
        ck_assert_int_eq(sb.slots[i].state, SB_IDLE);
        ck_assert_uint_eq(sb.slots[i].heartbeat_ms, 5000 + i);
        ck_assert_uint_eq(sb.slots[i].requests, 10 + i);
        for (size_t t = 0; t < SB_TEST_THREADS; t++) {
            ck_assert_uint_eq(sb_thread(&sb, i, t)->req_start_ms, 7000 + i);
            ck_assert_str_eq(sb_thread(&sb, i, t)->request, "GET /x");
        }
    }
    /* The first and the last slot too (no off-by-one at the edges). */
    sb_reset(&sb, 0);
    sb_reset(&sb, SB_TEST_SLOTS - 1);
    ck_assert(sb_test_is_zero(&sb.slots[0], sizeof(sb.slots[0])));
    ck_assert(sb_test_is_zero(sb_thread(&sb, SB_TEST_SLOTS - 1, 0),
                              SB_TEST_THREADS * sizeof(struct sb_thread)));
    ck_assert_uint_eq(sb.slots[2].requests, 12);
    ck_assert_str_eq(sb_thread(&sb, 2, SB_TEST_THREADS - 1)->request, "GET /x");
    sb_close(&sb);
}
END_TEST

START_TEST(test_sb_busy_request)
{
    struct sb sb;
    struct sb_thread *t;

    ck_assert_int_eq(sb_open(&sb, 1, 1), 0);
    t = sb_thread(&sb, 0, 0);
    sb_busy(t, "POST", "/upload?name=a%20b", "192.0.2.1", 12345);
    ck_assert_str_eq(t->request, "POST /upload?name=a%20b");
    ck_assert_str_eq(t->remote, "192.0.2.1");
    ck_assert_uint_eq(t->req_start_ms, 12345);
    /* A shorter one overwrites it completely. */
    sb_busy(t, "GET", "/", "192.0.2.1", 12400);
    ck_assert_str_eq(t->request, "GET /");
    ck_assert_uint_eq(t->req_start_ms, 12400);
    sb_close(&sb);
}
END_TEST

/* sb_count: requests, bytes, the status class and the histogram bucket
 * whose bound is the first at or above the duration; sb_add_counts sums. */
START_TEST(test_sb_count_and_sum)
{
    struct sb_counts a = {0}, b = {0}, sum = {0};

    sb_count(&a, 200, 14, 50);      /* <= 100 us: bucket 0 */
    sb_count(&a, 200, 14, 100);     /* the bound itself: bucket 0 */
    sb_count(&a, 404, 10, 101);     /* bucket 1 (<= 250 us) */
    sb_count(&a, 503, 0, 60000000); /* <= 60 s: bucket 17 */
    sb_count(&b, 101, 0, 60000001); /* beyond: +Inf */
    sb_count(&b, 999, 0, 0);        /* no class, still a request */
    ck_assert_uint_eq(a.requests, 4);
    ck_assert_uint_eq(a.bytes, 38);
    ck_assert_uint_eq(a.status[1], 2);
    ck_assert_uint_eq(a.status[3], 1);
    ck_assert_uint_eq(a.status[4], 1);
    ck_assert_uint_eq(a.hist[0], 2);
    ck_assert_uint_eq(a.hist[1], 1);
    ck_assert_uint_eq(a.hist[17], 1);
    ck_assert_uint_eq(a.dur_us, 60000251);
    ck_assert_uint_eq(b.hist[SB_HIST_N - 1], 1);
    ck_assert_uint_eq(b.status[0], 1);
    sb_add_counts(&sum, &a);
    sb_add_counts(&sum, &b);
    ck_assert_uint_eq(sum.requests, 6);
    ck_assert_uint_eq(sum.hist[0], 3);
    ck_assert_uint_eq(sb_hist_bound(0), 100);
    ck_assert_uint_eq(sb_hist_bound(SB_HIST_N - 2), 60000000);
    ck_assert_uint_eq(sb_hist_bound(SB_HIST_N - 1), 0);
}
END_TEST

/* What does not fit is cut, always NUL-terminated inside the entry. */
START_TEST(test_sb_busy_truncates)
{
    struct sb sb;
    struct sb_thread *t;
    char target[300], method[200], want[SB_REQUEST_MAX];

    ck_assert_int_eq(sb_open(&sb, 1, 2), 0);
    t = sb_thread(&sb, 0, 0);

    /* A long target: "GET " and as much as fits. */
    memset(target, 'a', sizeof(target) - 1);
    target[0] = '/';
    target[sizeof(target) - 1] = '\0';
    memset(t->request, 'Z', sizeof(t->request));
    sb_busy(t, "GET", target, "192.0.2.1", 1);
    ck_assert_uint_eq(strnlen(t->request, SB_REQUEST_MAX), SB_REQUEST_MAX - 1);
    snprintf(want, sizeof(want), "GET %s", target);
    ck_assert_str_eq(t->request, want);

    /* Exactly SB_REQUEST_MAX - 1 bytes: all of it. */
    target[SB_REQUEST_MAX - 1 - 4] = '\0';
    sb_busy(t, "GET", target, "192.0.2.1", 1);
    ck_assert_uint_eq(strlen(t->request), SB_REQUEST_MAX - 1);
    ck_assert_int_eq(t->request[SB_REQUEST_MAX - 2], 'a');

    /* A method that alone fills it (an extension method): no space. */
    memset(method, 'M', sizeof(method) - 1);
    method[sizeof(method) - 1] = '\0';
    memset(t->request, 'Z', sizeof(t->request));
    sb_busy(t, method, "/", "192.0.2.1", 1);
    ck_assert_uint_eq(strnlen(t->request, SB_REQUEST_MAX), SB_REQUEST_MAX - 1);
    for (size_t i = 0; i < SB_REQUEST_MAX - 1; i++)
        ck_assert_int_eq(t->request[i], 'M');
    method[SB_REQUEST_MAX - 1] = '\0'; /* exactly the room */
    sb_busy(t, method, "/", "192.0.2.1", 1);
    ck_assert_uint_eq(strlen(t->request), SB_REQUEST_MAX - 1);
    method[SB_REQUEST_MAX - 2] = '\0'; /* room for the space only */
    sb_busy(t, method, "/", "192.0.2.1", 1);
    ck_assert_uint_eq(strlen(t->request), SB_REQUEST_MAX - 1);
    ck_assert_int_eq(t->request[SB_REQUEST_MAX - 2], ' ');

    /* The next entry is never written. */
    ck_assert(sb_test_is_zero(sb_thread(&sb, 0, 1), sizeof(struct sb_thread)));
    sb_close(&sb);
}
END_TEST

/* 0 means idle, so a request started at time 0 must not look idle. */
START_TEST(test_sb_busy_now_zero)
{
    struct sb sb;
    struct sb_thread *t;

    ck_assert_int_eq(sb_open(&sb, 1, 1), 0);
    t = sb_thread(&sb, 0, 0);
    sb_busy(t, "GET", "/", "192.0.2.1", 0);
    ck_assert_uint_ne(t->req_start_ms, 0);
    sb_close(&sb);
}
END_TEST

START_TEST(test_sb_idle)
{
    struct sb sb;
    struct sb_thread *t;

    ck_assert_int_eq(sb_open(&sb, 2, 2), 0);
    t = sb_thread(&sb, 1, 1);
    sb_busy(t, "GET", "/a", "192.0.2.1", 50);
    sb_idle(&sb.slots[1], t);
    ck_assert_uint_eq(t->req_start_ms, 0);
    ck_assert_uint_eq(sb.slots[1].requests, 1);
    sb_busy(t, "GET", "/b", "192.0.2.1", 60);
    sb_idle(&sb.slots[1], t);
    ck_assert_uint_eq(sb.slots[1].requests, 2);
    ck_assert_uint_eq(sb.slots[0].requests, 0);
    ck_assert_uint_eq(sb_thread(&sb, 1, 0)->req_start_ms, 0);
    sb_close(&sb);
}
END_TEST

/* Handler threads of one worker count into the same slot at once. */
struct sb_test_counter {
    struct sb *sb;
    size_t t;
    pthread_barrier_t *start; /* all at once, so that they collide */
};

#define SB_TEST_ROUNDS 500000

static void *
sb_test_count(void *arg)
{
    struct sb_test_counter *c = arg;
    struct sb_thread *t = sb_thread(c->sb, 0, c->t);

    (void)pthread_barrier_wait(c->start); /* 0 or SERIAL_THREAD */
    for (int i = 0; i < SB_TEST_ROUNDS; i++) {
        sb_busy(t, "GET", "/", "192.0.2.1", (uint64_t)i);
        sb_idle(&c->sb->slots[0], t);
    }
    return NULL;
}

START_TEST(test_sb_idle_counts_atomically)
{
    struct sb sb;
    pthread_t th[SB_TEST_THREADS];
    struct sb_test_counter c[SB_TEST_THREADS];
    pthread_barrier_t start;

    ck_assert_int_eq(sb_open(&sb, 1, SB_TEST_THREADS), 0);
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, SB_TEST_THREADS), 0);
    for (size_t i = 0; i < SB_TEST_THREADS; i++) {
        c[i].sb = &sb;
        c[i].t = i;
        c[i].start = &start;
        ck_assert_int_eq(pthread_create(&th[i], NULL, sb_test_count, &c[i]), 0);
    }
    for (size_t i = 0; i < SB_TEST_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    (void)pthread_barrier_destroy(&start);
    ck_assert_uint_eq(sb.slots[0].requests,
                      (uint64_t)SB_TEST_ROUNDS * SB_TEST_THREADS);
    sb_close(&sb);
}
END_TEST

/* The master maps, forks, and reads what the worker wrote. */
START_TEST(test_sb_shared_across_fork)
{
    struct sb sb;
    pid_t pid;
    int status;

    ck_assert_int_eq(sb_open(&sb, SB_TEST_SLOTS, SB_TEST_THREADS), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct sb_slot *s = &sb.slots[2];
        s->pid = getpid();
        s->state = SB_IDLE;
        s->heartbeat_ms = 4242;
        sb_busy(sb_thread(&sb, 2, 1), "DELETE", "/item/7", "192.0.2.1", 777);
        sb_busy(sb_thread(&sb, 2, 2), "GET", "/done", "192.0.2.1", 778);
        sb_idle(s, sb_thread(&sb, 2, 2));
        _exit(0); /* no check or ASan teardown in the child */
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(sb.slots[2].pid, pid);
    ck_assert_int_eq(sb.slots[2].state, SB_IDLE);
    ck_assert_uint_eq(sb.slots[2].heartbeat_ms, 4242);
    ck_assert_uint_eq(sb.slots[2].requests, 1);
    ck_assert_str_eq(sb_thread(&sb, 2, 1)->request, "DELETE /item/7");
    ck_assert_uint_eq(sb_thread(&sb, 2, 1)->req_start_ms, 777);
    ck_assert_uint_eq(sb_thread(&sb, 2, 2)->req_start_ms, 0);
    ck_assert_str_eq(sb_thread(&sb, 2, 2)->request, "GET /done");
    /* Nothing else was touched. */
    ck_assert(sb_test_is_zero(&sb.slots[1], sizeof(sb.slots[1])));
    ck_assert(sb_test_is_zero(sb_thread(&sb, 2, 0), sizeof(struct sb_thread)));

    /* And the other way: the master resets, the child sees it. */
    sb_reset(&sb, 2);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(sb.slots[2].pid == 0 && sb_thread(&sb, 2, 1)->request[0] == '\0'
                  ? 0
                  : 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sb_close(&sb);
}
END_TEST

START_TEST(test_sb_now_ms)
{
    uint64_t a = sb_now_ms(), b;

    ck_assert_uint_gt(a, 0);
    usleep(30000);
    b = sb_now_ms();
    ck_assert_uint_ge(b, a + 10); /* coarse clock: a few ms of jitter */
    ck_assert_uint_lt(b, a + 5000);
}
END_TEST

static Suite *
sb_suite(void)
{
    Suite *s = suite_create("scoreboard");
    TCase *tc = tcase_create("scoreboard");

    tcase_add_test(tc, test_sb_open_zeroed);
    tcase_add_test(tc, test_sb_thread_indexing);
    tcase_add_test(tc, test_sb_reset_one_slot);
    tcase_add_test(tc, test_sb_busy_request);
    tcase_add_test(tc, test_sb_count_and_sum);
    tcase_add_test(tc, test_sb_busy_truncates);
    tcase_add_test(tc, test_sb_busy_now_zero);
    tcase_add_test(tc, test_sb_idle);
    tcase_add_test(tc, test_sb_idle_counts_atomically);
    tcase_add_test(tc, test_sb_shared_across_fork);
    tcase_add_test(tc, test_sb_now_ms);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(sb_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
