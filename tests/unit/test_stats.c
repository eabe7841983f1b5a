/* test_stats: what the stats endpoint shows, from a scoreboard filled by
 * hand: /metrics (the dead workers' counts added to the live ones, the
 * histogram cumulative, one line per listener) and /status (JSON, the
 * workers' text escaped), and the endpoint answering a real client over
 * a loopback socket. */
#include "stats.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

#define ST_SLOTS 4
#define ST_THREADS 2

struct st {
    struct sb board;
    pid_t pid[ST_SLOTS];
    struct stats_queue queue[1];
    struct listener ls[1];
    struct stats_view v;
};

static void
st_setup(struct st *t)
{
    memset(t, 0, sizeof(*t));
    ck_assert_int_eq(sb_open(&t->board, ST_SLOTS, ST_THREADS), 0);
    t->pid[1] = getpid(); /* a live worker whose memory can be read */
    t->board.slots[1].state = SB_IDLE;
    t->board.slots[1].n_threads = ST_THREADS;
    t->board.slots[1].gen = 3;
    t->board.slots[1].handoffs_given = 4;
    t->board.slots[1].handoffs_taken = 1;
    sb_count(&sb_thread(&t->board, 1, 0)->counts, 200, 10, 50);
    sb_count(&sb_thread(&t->board, 1, 1)->counts, 503, 5, 3000);
    /* Slot 2 has counts but no worker: not shown, not summed. */
    sb_count(&sb_thread(&t->board, 2, 0)->counts, 200, 1, 1);
    sb_busy(sb_thread(&t->board, 1, 1), "GET", "/a\"b\x01", "192.0.2.9",
            sb_now_ms());
    t->ls[0].fd = -1;
    snprintf(t->ls[0].name, sizeof(t->ls[0].name), "http://127.0.0.1:1");
    t->queue[0] = (struct stats_queue){3, 7, 128, 1};
    t->v.host_overflows = 2;
    t->v.board = &t->board;
    t->v.pid = t->pid;
    t->v.n_slots = ST_SLOTS;
    sb_count(&t->v.dead, 404, 100, 200);
    t->v.restarts[STATS_CRASH] = 1;
    t->v.generation = 3;
    t->v.target = 1;
    t->v.start_s = 1700000000;
    t->v.ls = t->ls;
    t->v.queue = t->queue;
    t->v.n_ls = 1;
}

static void
st_teardown(struct st *t)
{
    sb_close(&t->board);
}

static void
st_has(const char *text, const char *want)
{
    ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in:\n%s", want, text);
}

START_TEST(test_stats_metrics)
{
    struct st t;
    size_t len = 0;
    char *m;

    st_setup(&t);
    m = stats_metrics(&t.v, &len);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(strlen(m), len);
    st_has(m, "# TYPE forkd_requests_total counter\n");
    st_has(m, "forkd_requests_total{code=\"2xx\"} 1\n");
    st_has(m, "forkd_requests_total{code=\"4xx\"} 1\n"); /* the dead's */
    st_has(m, "forkd_requests_total{code=\"5xx\"} 1\n");
    st_has(m, "forkd_request_duration_seconds_bucket{le=\"0.0001\"} 1\n");
    st_has(m, "forkd_request_duration_seconds_bucket{le=\"0.00025\"} 2\n");
    st_has(m, "forkd_request_duration_seconds_bucket{le=\"0.005\"} 3\n");
    st_has(m, "forkd_request_duration_seconds_bucket{le=\"+Inf\"} 3\n");
    st_has(m, "forkd_request_duration_seconds_count 3\n");
    st_has(m, "forkd_request_duration_seconds_sum 0.003250\n");
    st_has(m, "forkd_response_body_bytes_total 115\n");
    st_has(m, "forkd_workers{state=\"serving\"} 1\n");
    st_has(m, "forkd_handler_threads{state=\"busy\"} 1\n");
    st_has(m, "forkd_handler_threads{state=\"idle\"} 1\n");
    st_has(m, "forkd_worker_restarts_total{reason=\"crash\"} 1\n");
    st_has(m, "forkd_listen_queue_length{listener=\"http://127.0.0.1:1\"} "
              "3\n");
    st_has(m, "forkd_listen_queue_peak{listener=\"http://127.0.0.1:1\"} 7\n");
    st_has(m, "forkd_host_listen_overflows_total 2\n");
    st_has(m, "forkd_generation 3\n");
    st_has(m, "forkd_handoffs_total{direction=\"given\"} 4\n");
    st_has(m, "forkd_handoffs_total{direction=\"taken\"} 1\n");
    st_has(m, "forkd_worker_resident_bytes{slot=\"1\"} ");
    ck_assert_ptr_null(strstr(m, "slot=\"2\""));
    free(m);
    st_teardown(&t);
}
END_TEST

START_TEST(test_stats_status_json)
{
    struct st t;
    size_t len = 0;
    char *j;

    st_setup(&t);
    j = stats_status(&t.v, &len);
    ck_assert_ptr_nonnull(j);
    st_has(j, "\"generation\":3,");
    st_has(j, "\"requests\":3,");
    st_has(j, "\"status\":[0,1,0,1,1]");
    st_has(j, "\"listeners\":[{\"name\":\"http://127.0.0.1:1\",\"queue\":3,"
              "\"peak\":7,\"limit\":128,\"known\":true}],"
              "\"host_listen_overflows\":2,");
    st_has(j, "\"slot\":1,");
    st_has(j, "\"status\":[0,1,0,0,1],\"handoffs_given\":4,"
              "\"handoffs_taken\":1,");
    st_has(j, "\"busy\":true,");
    /* The worker's text, escaped: it may hold anything. */
    st_has(j, "\"request\":\"GET /a\\u0022b\\u0001\"");
    st_has(j, "\"remote\":\"192.0.2.9\"");
    ck_assert_ptr_null(strstr(j, "\"slot\":2"));
    free(j);
    j = stats_screen(&t.v, &len);
    ck_assert_ptr_nonnull(j);
    st_has(j, "generation 3; workers 1 serving of 1 wanted");
    st_has(j, "listen queue http://127.0.0.1:1: 3 now, 7 peak (limit 128)");
    st_has(j, "listen queue overflows on this host (TCP): 2");
    st_has(j, "requests: 3 (2xx 1, 3xx 0, 4xx 1, 5xx 1)");
    free(j);
    st_teardown(&t);
}
END_TEST

/* The endpoint over a real socket: a GET /metrics is answered and the
 * connection closed; an unknown path gets 404. */
START_TEST(test_stats_endpoint)
{
    struct st t;
    struct stats s;
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    char buf[65536];
    size_t n = 0;
    int c;

    st_setup(&t);
    ck_assert_int_eq(stats_open(&s, "127.0.0.1:0"), 0);
    ck_assert_int_eq(getsockname(s.fd, (struct sockaddr *)&ss, &slen), 0);
    c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&ss, slen), 0);
    ck_assert_int_eq(write(c, "GET /metrics HTTP/1.0\r\n\r\n", 25), 25);
    for (int i = 0; i < 200; i++) {
        stats_serve(&s, &t.v, sb_now_ms());
        ssize_t k = recv(c, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
        if (k == 0)
            break;
        if (k > 0)
            n += (size_t)k;
        usleep(5000);
    }
    buf[n] = '\0';
    st_has(buf, "HTTP/1.1 200 OK\r\n");
    st_has(buf, "Content-Type: text/plain; version=0.0.4");
    st_has(buf, "forkd_generation 3\n");
    close(c);
    stats_close(&s, 1);
    ck_assert_int_eq(s.fd, -1);
    st_teardown(&t);
}
END_TEST

static Suite *
stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_stats_metrics);
    tcase_add_test(tc, test_stats_status_json);
    tcase_add_test(tc, test_stats_endpoint);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(stats_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
