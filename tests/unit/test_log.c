/* test_log: level names, the error-log line (time, pid, level, one line
 * whatever the message holds), level filtering, reopening after rotation,
 * and the access log's per-thread buffers.  Every test writes to its own
 * files in the suite's temp directory and reads them back. */
#include "fixture.h"
#include "log.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One directory for the suite, made and removed by the runner (unchecked
 * fixture) so that failing tests leave nothing behind. */
static char log_test_dir[64];

static void
log_test_make_dir(void)
{
    strcpy(log_test_dir, "/tmp/forkd-test-log-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(log_test_dir));
}

static void
log_test_remove_dir(void)
{
    test_rmdir(log_test_dir);
}

/* out = log_test_dir/name, removed if an earlier run left it. */
static void
log_test_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", log_test_dir, name);
    (void)unlink(out);
}

#define LOG_TEST_MAX (256 * 1024)

/* The whole file (NUL-terminated, caller frees); "" if it does not
 * exist. */
static char *
log_test_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s = malloc(LOG_TEST_MAX + 1);
    size_t n = 0;

    ck_assert_ptr_nonnull(s);
    if (f) {
        n = fread(s, 1, LOG_TEST_MAX, f);
        fclose(f);
    }
    s[n] = '\0';
    return s;
}

static void
log_test_expect(const char *path, const char *want)
{
    char *got = log_test_slurp(path);

    ck_assert_str_eq(got, want);
    free(got);
}

/* line (up to its newline) must be "TIME forkd[PID] level: msg" with
 * TIME within a few seconds of now.  Returns the start of the next line. */
static const char *
log_test_assert_line(const char *line, const char *level, const char *msg)
{
    struct tm tm;
    const char *rest, *nl;
    char want[4096];
    time_t t, now = time(NULL);

    memset(&tm, 0, sizeof(tm));
    rest = strptime(line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ck_assert_msg(rest != NULL, "no time at the start of \"%s\"", line);
    ck_assert_int_eq(rest - line, 20); /* YYYY-MM-DDTHH:MM:SSZ */
    t = timegm(&tm);
    ck_assert_msg(t >= now - 5 && t <= now + 1, "time %lld, now %lld",
                  (long long)t, (long long)now);
    snprintf(want, sizeof(want), " forkd[%d] %s: %s\n", (int)getpid(), level,
             msg);
    nl = strchr(rest, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_msg((size_t)(nl + 1 - rest) == strlen(want) &&
                      memcmp(rest, want, strlen(want)) == 0,
                  "got \"%.*s\", expected \"%s\"", (int)(nl + 1 - rest), rest,
                  want);
    return nl + 1;
}

/* --- levels ------------------------------------------------------------- */

START_TEST(test_log_level_names)
{
    static const char *const names[] = {"error", "warn", "notice", "info",
                                        "debug"};
    static const enum forkd_level levels[] = {FORKD_LOG_ERROR, FORKD_LOG_WARN,
                                              FORKD_LOG_NOTICE, FORKD_LOG_INFO,
                                              FORKD_LOG_DEBUG};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ck_assert_int_eq(log_level_parse(names[i]), (int)levels[i]);
        ck_assert_str_eq(log_level_name(levels[i]), names[i]);
        ck_assert_int_eq(log_level_parse(log_level_name(levels[i])),
                         (int)levels[i]);
    }
    ck_assert_int_eq(log_level_parse(""), -1);
    ck_assert_int_eq(log_level_parse("warning"), -1);
    ck_assert_int_eq(log_level_parse("inf"), -1);
    ck_assert_int_eq(log_level_parse("debug "), -1);
    ck_assert_str_eq(log_level_name((enum forkd_level)5), "?");
    ck_assert_str_eq(log_level_name((enum forkd_level) - 1), "?");
}
END_TEST

/* --- the error log ------------------------------------------------------ */

START_TEST(test_log_msg_line)
{
    char path[128], *got;
    const char *next;

    log_test_path(path, sizeof(path), "line.log");
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_INFO), 0);
    ck_assert(!log_is_stderr());
    ck_assert(!log_has_access());
    log_msg(FORKD_LOG_WARN, "worker %d killed: %s ran %us > timeout %us", 3,
            "GET /slow", 31u, 30u);
    log_error("bind %s: %s", "127.0.0.1:80", "Permission denied");
    got = log_test_slurp(path);
    next = log_test_assert_line(
        got, "warn", "worker 3 killed: GET /slow ran 31s > timeout 30s");
    next = log_test_assert_line(next, "error",
                                "bind 127.0.0.1:80: Permission denied");
    ck_assert_str_eq(next, "");
    free(got);
    log_close();
    ck_assert(log_is_stderr());
}
END_TEST

START_TEST(test_log_msg_filters_level)
{
    char path[128], *got;
    const char *next;

    log_test_path(path, sizeof(path), "level.log");
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_NOTICE), 0);
    ck_assert(log_is_enabled(FORKD_LOG_ERROR));
    ck_assert(log_is_enabled(FORKD_LOG_NOTICE));
    ck_assert(!log_is_enabled(FORKD_LOG_INFO));
    ck_assert(!log_is_enabled(FORKD_LOG_DEBUG));
    log_debug("d");
    log_info("i");
    log_notice("n");
    log_warn("w");
    log_error("e");
    got = log_test_slurp(path);
    next = log_test_assert_line(got, "notice", "n");
    next = log_test_assert_line(next, "warn", "w");
    next = log_test_assert_line(next, "error", "e");
    ck_assert_str_eq(next, "");
    free(got);
    log_close();

    /* debug lets everything through; error only errors. */
    log_test_path(path, sizeof(path), "level2.log");
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_DEBUG), 0);
    log_debug("d");
    log_close();
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_ERROR), 0);
    log_warn("w");
    log_error("e");
    log_close();
    got = log_test_slurp(path);
    next = log_test_assert_line(got, "debug", "d");
    next = log_test_assert_line(next, "error", "e");
    ck_assert_str_eq(next, "");
    free(got);
}
END_TEST

/* A peer's CR or LF in a message never splits the line. */
START_TEST(test_log_msg_crlf)
{
    char path[128], *got;
    const char *next;

    log_test_path(path, sizeof(path), "crlf.log");
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_INFO), 0);
    log_warn("bad head from %s: \"%s\"", "192.0.2.1",
             "GET / HTTP/1.1\r\nX: 1\nY\r");
    log_info("\n");
    got = log_test_slurp(path);
    next = log_test_assert_line(
        got, "warn", "bad head from 192.0.2.1: \"GET / HTTP/1.1  X: 1 Y \"");
    next = log_test_assert_line(next, "info", " ");
    ck_assert_str_eq(next, "");
    free(got);
    log_close();
}
END_TEST

/* A message longer than a line is cut, still one line. */
START_TEST(test_log_msg_long)
{
    char path[128], *got, *msg;

    msg = malloc(5001);
    ck_assert_ptr_nonnull(msg);
    memset(msg, 'm', 5000);
    msg[5000] = '\0';
    log_test_path(path, sizeof(path), "long.log");
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_INFO), 0);
    log_info("%s", msg);
    log_info("after");
    got = log_test_slurp(path);
    {
        char *nl = strchr(got, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_uint_le((size_t)(nl + 1 - got), 2048);
        ck_assert_int_eq(nl[-1], 'm');
        ck_assert_ptr_ne(strstr(got, " info: mmm"), NULL);
        log_test_assert_line(nl + 1, "info", "after");
    }
    free(got);
    free(msg);
    log_close();
}
END_TEST

/* Logging never changes errno (callers log, then report errno). */
START_TEST(test_log_msg_keeps_errno)
{
    char path[128];

    log_test_path(path, sizeof(path), "errno.log");
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_INFO), 0);
    errno = ENOENT;
    log_error("x");
    ck_assert_int_eq(errno, ENOENT);
    errno = EINTR;
    log_debug("filtered");
    ck_assert_int_eq(errno, EINTR);
    log_close();
}
END_TEST

/* A log that cannot be opened changes nothing: the old one is still
 * written. */
START_TEST(test_log_open_fails)
{
    char path[128], bad[160], *got;

    log_test_path(path, sizeof(path), "keep.log");
    ck_assert_int_eq(log_open(path, NULL, FORKD_LOG_INFO), 0);
    snprintf(bad, sizeof(bad), "%s/no/such/dir.log", log_test_dir);
    errno = 0;
    ck_assert_int_eq(log_open(bad, NULL, FORKD_LOG_DEBUG), -1);
    ck_assert_int_eq(errno, ENOENT);
    errno = 0;
    ck_assert_int_eq(log_open(NULL, bad, FORKD_LOG_DEBUG), -1);
    ck_assert_int_eq(errno, ENOENT);
    log_debug("filtered: still at info");
    log_info("still here");
    got = log_test_slurp(path);
    ck_assert_str_eq(log_test_assert_line(got, "info", "still here"), "");
    free(got);
    log_close();
}
END_TEST

/* logrotate renames the files, then asks for a reopen: new lines go to
 * new files at the configured paths, old ones stay in the renamed ones. */
START_TEST(test_log_reopen)
{
    char err[128], err1[128], acc[128], acc1[128], *got;
    const char *next;

    log_test_path(err, sizeof(err), "rot-error.log");
    log_test_path(err1, sizeof(err1), "rot-error.log.1");
    log_test_path(acc, sizeof(acc), "rot-access.log");
    log_test_path(acc1, sizeof(acc1), "rot-access.log.1");
    ck_assert_int_eq(log_open(err, acc, FORKD_LOG_INFO), 0);
    log_info("one");
    log_access("a1", 2);
    log_access_flush();
    ck_assert_int_eq(rename(err, err1), 0);
    ck_assert_int_eq(rename(acc, acc1), 0);
    /* Until the reopen the old files are written. */
    log_info("two");
    log_access("a2", 2); /* buffered: flushed by the reopen, to the old */
    ck_assert_int_eq(log_reopen(), 0);
    log_info("three");
    log_access("a3", 2);
    log_access_flush();

    got = log_test_slurp(err1);
    next = log_test_assert_line(got, "info", "one");
    next = log_test_assert_line(next, "info", "two");
    ck_assert_str_eq(next, "");
    free(got);
    got = log_test_slurp(err);
    ck_assert_str_eq(log_test_assert_line(got, "info", "three"), "");
    free(got);
    log_test_expect(acc1, "a1\na2\n");
    log_test_expect(acc, "a3\n");

    /* Again, and reopening without a rename appends. */
    ck_assert_int_eq(log_reopen(), 0);
    log_access("a4", 2);
    log_close(); /* flushes */
    log_test_expect(acc, "a3\na4\n");
}
END_TEST

/* A worker takes the files its master reopened (log_files on one side,
 * log_adopt on the other): the descriptor numbers stay, the lines go to
 * the new files, and -1 keeps the current one. */
START_TEST(test_log_adopt)
{
    char err[128], acc[128], err2[128], acc2[128];
    int efd, afd, nerr, nacc, keep_e, keep_a;

    log_test_path(err, sizeof(err), "adopt-error.log");
    log_test_path(acc, sizeof(acc), "adopt-access.log");
    log_test_path(err2, sizeof(err2), "adopt-error2.log");
    log_test_path(acc2, sizeof(acc2), "adopt-access2.log");
    ck_assert_int_eq(log_open(err, acc, FORKD_LOG_INFO), 0);
    log_files(&keep_e, &keep_a);
    ck_assert_int_gt(keep_e, 2);
    ck_assert_int_gt(keep_a, 2);
    log_access("b1", 2); /* buffered: flushed to the old file first */
    nerr = open(err2, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    nacc = open(acc2, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_int_ge(nerr, 0);
    ck_assert_int_ge(nacc, 0);
    log_adopt(nerr, nacc);
    ck_assert_int_eq(fcntl(nerr, F_GETFD), -1); /* taken over, closed */
    ck_assert_int_eq(fcntl(nacc, F_GETFD), -1);
    log_files(&efd, &afd);
    ck_assert_int_eq(efd, keep_e);
    ck_assert_int_eq(afd, keep_a);
    log_info("after");
    log_access("b2", 2);
    log_access_flush();
    log_adopt(-1, -1); /* nothing sent: nothing changes */
    log_access("b3", 2);
    log_close();
    log_test_expect(acc, "b1\n");
    log_test_expect(acc2, "b2\nb3\n");
    char *got = log_test_slurp(err2);
    ck_assert_str_eq(log_test_assert_line(got, "info", "after"), "");
    free(got);
}
END_TEST

/* Standard streams are not files to pass on. */
START_TEST(test_log_files_stdio)
{
    int efd, afd;

    ck_assert_int_eq(log_open(NULL, "-", FORKD_LOG_INFO), 0);
    log_files(&efd, &afd);
    ck_assert_int_eq(efd, -1);
    ck_assert_int_eq(afd, -1);
    log_close();
}
END_TEST

/* With the error log on stderr there is nothing to reopen. */
START_TEST(test_log_reopen_stderr)
{
    ck_assert_int_eq(log_open(NULL, NULL, FORKD_LOG_INFO), 0);
    ck_assert(log_is_stderr());
    ck_assert(!log_has_access());
    ck_assert_int_eq(log_reopen(), 0);
    ck_assert(log_is_stderr());
    log_close();
}
END_TEST

/* --- the access log ----------------------------------------------------- */

START_TEST(test_log_access_buffered)
{
    char path[128];

    log_test_path(path, sizeof(path), "abuf.log");
    ck_assert_int_eq(log_open(NULL, path, FORKD_LOG_INFO), 0);
    ck_assert(log_has_access());
    log_access("first line", 10);
    log_access("second", 3); /* only len bytes */
    log_test_expect(path, "");
    log_access_flush();
    log_test_expect(path, "first line\nsec\n");
    log_access_flush(); /* nothing more */
    log_test_expect(path, "first line\nsec\n");
    log_close();
}
END_TEST

/* A full buffer is written whole lines at a time; order is kept. */
START_TEST(test_log_access_fills)
{
    char path[128], line[1000], *got;
    size_t len;

    log_test_path(path, sizeof(path), "afill.log");
    ck_assert_int_eq(log_open(NULL, path, FORKD_LOG_INFO), 0);
    for (int i = 0; i < 40; i++) {
        memset(line, 'a' + i % 26, sizeof(line));
        log_access(line, sizeof(line));
    }
    got = log_test_slurp(path);
    len = strlen(got);
    ck_assert_uint_gt(len, 0);                       /* some flushed */
    ck_assert_uint_eq(len % (sizeof(line) + 1), 0);  /* whole lines */
    ck_assert_uint_lt(len, 40 * (sizeof(line) + 1)); /* not all */
    free(got);
    log_access_flush();
    got = log_test_slurp(path);
    ck_assert_uint_eq(strlen(got), 40 * (sizeof(line) + 1));
    for (int i = 0; i < 40; i++) {
        const char *l = got + (size_t)i * (sizeof(line) + 1);
        ck_assert_int_eq(l[0], 'a' + i % 26);
        ck_assert_int_eq(l[sizeof(line) - 1], 'a' + i % 26);
        ck_assert_int_eq(l[sizeof(line)], '\n');
    }
    free(got);
    log_close();
}
END_TEST

/* A line bigger than the buffer is written at once, after what was
 * buffered before it. */
START_TEST(test_log_access_huge_line)
{
    char path[128], *big, *got;
    const size_t n = 40000;

    big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, 'h', n);
    log_test_path(path, sizeof(path), "ahuge.log");
    ck_assert_int_eq(log_open(NULL, path, FORKD_LOG_INFO), 0);
    log_access("before", 6);
    log_access(big, n);
    log_access("after", 5);
    log_access_flush();
    got = log_test_slurp(path);
    ck_assert_uint_eq(strlen(got), 7 + n + 1 + 6);
    ck_assert(memcmp(got, "before\n", 7) == 0);
    ck_assert(memcmp(got + 7, big, n) == 0);
    ck_assert_str_eq(got + 7 + n, "\nafter\n");
    free(got);
    free(big);
    log_close();
}
END_TEST

START_TEST(test_log_access_close_flushes)
{
    char path[128];

    log_test_path(path, sizeof(path), "aclose.log");
    ck_assert_int_eq(log_open(NULL, path, FORKD_LOG_INFO), 0);
    log_access("last", 4);
    log_close();
    log_test_expect(path, "last\n");
    ck_assert(!log_has_access());
    log_access("lost", 4); /* no access log: dropped */
    log_access_flush();
    log_test_expect(path, "last\n");
}
END_TEST

/* Each handler thread has its own buffer: it flushes its own lines, not
 * another thread's half-built ones. */
static void *
log_test_thread(void *arg)
{
    const char *line = arg;

    log_access(line, strlen(line));
    log_access_flush();
    return NULL;
}

START_TEST(test_log_access_per_thread)
{
    char path[128];
    pthread_t th;

    log_test_path(path, sizeof(path), "athread.log");
    ck_assert_int_eq(log_open(NULL, path, FORKD_LOG_INFO), 0);
    log_access("main", 4);
    ck_assert_int_eq(
        pthread_create(&th, NULL, log_test_thread, (void *)"thread"), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    log_test_expect(path, "thread\n"); /* not "main" */
    log_access_flush();
    log_test_expect(path, "thread\nmain\n");
    log_close();
}
END_TEST

static Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *levels = tcase_create("levels");
    TCase *files = tcase_create("files");

    tcase_add_test(levels, test_log_level_names);
    suite_add_tcase(s, levels);

    tcase_add_unchecked_fixture(files, log_test_make_dir, log_test_remove_dir);
    tcase_add_test(files, test_log_msg_line);
    tcase_add_test(files, test_log_msg_filters_level);
    tcase_add_test(files, test_log_msg_crlf);
    tcase_add_test(files, test_log_msg_long);
    tcase_add_test(files, test_log_msg_keeps_errno);
    tcase_add_test(files, test_log_open_fails);
    tcase_add_test(files, test_log_reopen);
    tcase_add_test(files, test_log_reopen_stderr);
    tcase_add_test(files, test_log_access_buffered);
    tcase_add_test(files, test_log_access_fills);
    tcase_add_test(files, test_log_access_huge_line);
    tcase_add_test(files, test_log_access_close_flushes);
    tcase_add_test(files, test_log_access_per_thread);
    tcase_add_test(files, test_log_adopt);
    tcase_add_test(files, test_log_files_stdio);
    suite_add_tcase(s, files);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
