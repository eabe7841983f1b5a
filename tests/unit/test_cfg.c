/* test_cfg: defaults, the ini file (through inih), the command line and the
 * final checks.  Every error must be one line "FILE:LINE: KEY: message"
 * naming the line that is wrong. */
#include "cfg.h"
#include "fixture.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char cfg_test_dir[64];

static void
cfg_test_setup(void)
{
    strcpy(cfg_test_dir, "/tmp/forkd-test-cfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(cfg_test_dir));
}

static void
cfg_test_teardown(void)
{
    test_rmdir(cfg_test_dir);
}

/* Write text to cfg_test_dir/name; the path goes to out. */
static void
cfg_test_write(char *out, size_t cap, const char *name, const char *text)
{
    FILE *f;

    snprintf(out, cap, "%s/%s", cfg_test_dir, name);
    f = fopen(out, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* Load text as an ini file; returns cfg_load's result, err filled. */
static int
cfg_test_load(struct cfg *c, const char *text, char *path, size_t cap,
              char err[CFG_ERR_MAX])
{
    ck_assert_int_eq(cfg_init(c), 0);
    cfg_test_write(path, cap, "forkd.ini", text);
    err[0] = '\0';
    return cfg_load(c, path, err);
}

/* err must start with "PATH:LINE: " followed by rest. */
static void
cfg_test_err_at(const char *err, const char *path, int line, const char *rest)
{
    char want[CFG_ERR_MAX];

    snprintf(want, sizeof(want), "%s:%d: %s", path, line, rest);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                  "error \"%s\" does not start with \"%s\"", err, want);
    ck_assert_ptr_null(strchr(err, '\n')); /* one line */
}

/* A [server] value that must be refused, at line 2, naming key. */
static void
cfg_test_bad_value(const char *key, const char *value)
{
    struct cfg c;
    char text[256], path[128], err[CFG_ERR_MAX], want[128];

    snprintf(text, sizeof(text), "[server]\n%s = %s\n", key, value);
    ck_assert_msg(cfg_test_load(&c, text, path, sizeof(path), err) == -1,
                  "%s = %s accepted", key, value);
    snprintf(want, sizeof(want), "%s: ", key);
    cfg_test_err_at(err, path, 2, want);
    cfg_fini(&c);
}

/* --- defaults ---------------------------------------------------------- */

START_TEST(test_cfg_init_defaults)
{
    struct cfg c;

    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_ptr_null(c.file);
    ck_assert_ptr_null(c.dir);
    ck_assert_uint_eq(c.n_binds, 0); /* the default bind comes at cfg_check */
    ck_assert_uint_eq(c.workers, 1);
    ck_assert_uint_eq(c.threads, 1);
    ck_assert_uint_eq(c.backlog, 2048);
    ck_assert_uint_eq(c.keepalive_s, 5);
    ck_assert_uint_eq(c.max_connections, 1000);
    ck_assert_uint_eq(c.header_timeout_s, 10);
    ck_assert_uint_eq(c.body_timeout_s, 30);
    ck_assert_uint_eq(c.send_timeout_s, 30);
    ck_assert_uint_eq(c.timeout_s, 30);
    ck_assert_uint_eq(c.graceful_timeout_s, 30);
    ck_assert_uint_eq(c.limit_request_line, 8190);
    ck_assert_uint_eq(c.limit_request_fields, 100);
    ck_assert_uint_eq(c.limit_request_field_size, 8190);
    ck_assert_uint_eq(c.limit_request_head, 32768);
    ck_assert_uint_eq(c.limit_request_body, 10485760);
    /* Empty log paths: stderr and no access log. */
    ck_assert(c.error_log == NULL || c.error_log[0] == '\0');
    ck_assert(c.access_log == NULL || c.access_log[0] == '\0');
    ck_assert_int_eq(c.log_level, FORKD_LOG_INFO);
    ck_assert_ptr_null(c.app_path);
    ck_assert_int_eq(c.app_line, 0);
    ck_assert_uint_eq(c.n_opts, 0);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_fini_then_init_again)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_int_eq(cfg_set(&c, "workers", "7", err), 0);
    ck_assert_int_eq(cfg_set(&c, "bind", "127.0.0.1:1", err), 0);
    cfg_fini(&c);
    ck_assert_ptr_null(c.binds);
    ck_assert_ptr_null(c.app_path);
    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_uint_eq(c.workers, 1);
    ck_assert_uint_eq(c.n_binds, 0);
    cfg_fini(&c);
}
END_TEST

/* --- the ini file ------------------------------------------------------ */

START_TEST(test_cfg_load_every_key)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];
    static const char text[] = "; every key\n"
                               "[server]\n"
                               "bind = 127.0.0.1:9000\n"
                               "bind = unix:/tmp/forkd-test.sock\n"
                               "workers = 4\n"
                               "threads = 1\n"
                               "backlog = 100\n"
                               "keepalive = 7\n"
                               "max_connections = 50\n"
                               "header_timeout = 11\n"
                               "body_timeout = 12\n"
                               "send_timeout = 13\n"
                               "timeout = 14\n"
                               "graceful_timeout = 15\n"
                               "limit_request_line = 4096\n"
                               "limit_request_fields = 50\n"
                               "limit_request_field_size = 2048\n"
                               "limit_request_head = 16384\n"
                               "limit_request_body = 0\n"
                               "error_log = /var/log/forkd/error.log\n"
                               "access_log = -\n"
                               "log_level = debug\n"
                               "access_log_format = json\n"
                               "[app]\n"
                               "path = /opt/forkd/app.so\n"
                               "greeting = hello\n";

    ck_assert_msg(cfg_test_load(&c, text, path, sizeof(path), err) == 0, "%s",
                  err);
    ck_assert_str_eq(c.file, path);
    ck_assert_str_eq(c.dir, cfg_test_dir);
    ck_assert_uint_eq(c.n_binds, 2);
    ck_assert_str_eq(c.binds[0], "127.0.0.1:9000");
    ck_assert_str_eq(c.binds[1], "unix:/tmp/forkd-test.sock");
    ck_assert_uint_eq(c.workers, 4);
    ck_assert_uint_eq(c.threads, 1);
    ck_assert_uint_eq(c.backlog, 100);
    ck_assert_uint_eq(c.keepalive_s, 7);
    ck_assert_uint_eq(c.max_connections, 50);
    ck_assert_uint_eq(c.header_timeout_s, 11);
    ck_assert_uint_eq(c.body_timeout_s, 12);
    ck_assert_uint_eq(c.send_timeout_s, 13);
    ck_assert_uint_eq(c.timeout_s, 14);
    ck_assert_uint_eq(c.graceful_timeout_s, 15);
    ck_assert_uint_eq(c.limit_request_line, 4096);
    ck_assert_uint_eq(c.limit_request_fields, 50);
    ck_assert_uint_eq(c.limit_request_field_size, 2048);
    ck_assert_uint_eq(c.limit_request_head, 16384);
    ck_assert_uint_eq(c.limit_request_body, 0);
    ck_assert_str_eq(c.error_log, "/var/log/forkd/error.log");
    ck_assert_str_eq(c.access_log, "-");
    ck_assert_int_eq(c.log_level, FORKD_LOG_DEBUG);
    ck_assert_uint_eq(c.access_log_format, 2); /* json */
    ck_assert_str_eq(c.app_path, "/opt/forkd/app.so");
    ck_assert_int_eq(c.app_line, 25);
    ck_assert_uint_eq(c.n_opts, 1);
    ck_assert_str_eq(c.opts[0].key, "greeting");
    ck_assert_str_eq(c.opts[0].value, "hello");
    ck_assert_int_eq(cfg_check(&c, err), 0);
    ck_assert_uint_eq(c.n_binds, 2); /* no default added */
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_colon_and_comments)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_msg(cfg_test_load(&c,
                                "# hash comment\n"
                                "[server]\n"
                                "workers: 6 ; inline comment\n"
                                "   ; indented comment\n"
                                "backlog=9\n",
                                path, sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_uint_eq(c.workers, 6);
    ck_assert_uint_eq(c.backlog, 9);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_unknown_key)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_test_load(&c,
                                   "[server]\n"
                                   "workers = 2\n"
                                   "\n"
                                   "; a comment\n"
                                   "wrokers = 3\n",
                                   path, sizeof(path), err),
                     -1);
    cfg_test_err_at(err, path, 5, "wrokers:");
    ck_assert_ptr_nonnull(strstr(err, "unknown key"));
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_first_error_kept)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_test_load(&c,
                                   "[server]\n"
                                   "backlog = 1\n"
                                   "workers = 0\n"
                                   "bogus = 1\n",
                                   path, sizeof(path), err),
                     -1);
    cfg_test_err_at(err, path, 3, "workers: ");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_line_after_continuation)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    /* inih joins an indented line to the previous key (a second call). */
    ck_assert_int_eq(cfg_test_load(&c,
                                   "[app]\n"
                                   "opt = a\n"
                                   "   b\n"
                                   "[server]\n"
                                   "\n"
                                   "bogus = 1\n",
                                   path, sizeof(path), err),
                     -1);
    cfg_test_err_at(err, path, 6, "bogus:");
    ck_assert_uint_eq(c.n_opts, 2);
    ck_assert_str_eq(c.opts[1].key, "opt");
    ck_assert_str_eq(c.opts[1].value, "b");
    cfg_fini(&c);
}
END_TEST

/* "x ; a = b": for inih the ';' starts an inline comment, so the line has
 * no '=' and is a syntax error, not a name=value line.  Whatever the
 * message, it must not pair the next key with the wrong line. */
START_TEST(test_cfg_load_inline_comment_before_equals)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], at2[160], at3[160];

    ck_assert_int_eq(cfg_test_load(&c,
                                   "[server]\n"
                                   "x ; a = b\n"
                                   "workers = 0\n",
                                   path, sizeof(path), err),
                     -1);
    snprintf(at2, sizeof(at2), "%s:2: ", path);
    snprintf(at3, sizeof(at3), "%s:3: workers:", path);
    ck_assert_msg(strncmp(err, at3, strlen(at3)) == 0 ||
                      (strncmp(err, at2, strlen(at2)) == 0 &&
                       strstr(err, "workers") == NULL),
                  "error \"%s\" names the wrong line", err);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_bad_workers)
{
    cfg_test_bad_value("workers", "x");
    cfg_test_bad_value("workers", "0");
    cfg_test_bad_value("workers", "1025");
    cfg_test_bad_value("workers", "-1");
    cfg_test_bad_value("workers", "+3");
    cfg_test_bad_value("workers", "3x");
    cfg_test_bad_value("workers", "0x10");
    cfg_test_bad_value("workers", "3.0");
    cfg_test_bad_value("workers", "99999999999999999999999");
    cfg_test_bad_value("workers", "4294967297"); /* 2^32 + 1 */
    cfg_test_bad_value("workers", "");
}
END_TEST

START_TEST(test_cfg_load_bad_message)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], want[256];

    ck_assert_int_eq(
        cfg_test_load(&c, "[server]\nworkers = 0\n", path, sizeof(path), err),
        -1);
    snprintf(want, sizeof(want),
             "%s:2: workers: expected an integer in 1..1024, got \"0\"", path);
    ck_assert_str_eq(err, want);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_workers_bounds)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_test_load(&c, "[server]\nworkers = 1024\n", path,
                                   sizeof(path), err),
                     0);
    ck_assert_uint_eq(c.workers, 1024);
    cfg_fini(&c);
    ck_assert_int_eq(
        cfg_test_load(&c, "[server]\nworkers = 1\n", path, sizeof(path), err),
        0);
    ck_assert_uint_eq(c.workers, 1);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_trims_spaces)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    /* inih strips the spaces around names and values. */
    ck_assert_msg(cfg_test_load(&c, "[server]\n  workers   =    3   \n", path,
                                sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_uint_eq(c.workers, 3);
    cfg_fini(&c);
    ck_assert_msg(cfg_test_load(&c, "[server]\nworkers =\t 3\t\n", path,
                                sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_uint_eq(c.workers, 3);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_threads_bounds)
{
    cfg_test_bad_value("threads", "1025");
    cfg_test_bad_value("threads", "0");
}
END_TEST

START_TEST(test_cfg_load_bad_access_log_format)
{
    cfg_test_bad_value("access_log_format", "xml");
    cfg_test_bad_value("access_log_format", "");
    cfg_test_bad_value("access_log_format", "JSON");
}
END_TEST

START_TEST(test_cfg_load_bad_log_level)
{
    cfg_test_bad_value("log_level", "loud");
    cfg_test_bad_value("log_level", "");
    cfg_test_bad_value("log_level", "3");
}
END_TEST

START_TEST(test_cfg_load_log_levels)
{
    static const char *const names[] = {"error", "warn", "notice", "info",
                                        "debug"};
    static const enum forkd_level levels[] = {FORKD_LOG_ERROR, FORKD_LOG_WARN,
                                              FORKD_LOG_NOTICE, FORKD_LOG_INFO,
                                              FORKD_LOG_DEBUG};
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_msg(cfg_set(&c, "log_level", names[i], err) == 0, "%s", err);
        ck_assert_int_eq(c.log_level, levels[i]);
    }
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_bad_limits)
{
    cfg_test_bad_value("limit_request_line", "63");
    cfg_test_bad_value("limit_request_line", "65537");
    cfg_test_bad_value("limit_request_fields", "0");
    cfg_test_bad_value("limit_request_fields", "1001");
    cfg_test_bad_value("limit_request_field_size", "63");
    cfg_test_bad_value("limit_request_head", "255");
    cfg_test_bad_value("limit_request_head", "1048577");
    cfg_test_bad_value("limit_request_body", "-1");
    cfg_test_bad_value("limit_request_body", "9223372036854775808");
    cfg_test_bad_value("backlog", "0");
    cfg_test_bad_value("backlog", "65536");
    cfg_test_bad_value("keepalive", "3601");
    cfg_test_bad_value("header_timeout", "0");
    cfg_test_bad_value("timeout", "86401");
    cfg_test_bad_value("max_connections", "0");
}
END_TEST

START_TEST(test_cfg_load_bad_bind)
{
    cfg_test_bad_value("bind", "");
    cfg_test_bad_value("bind", "noport");
    cfg_test_bad_value("bind", "1.2.3.4:99999");
    cfg_test_bad_value("bind", "[::1]80");
    cfg_test_bad_value("bind", "unix:");
}
END_TEST

START_TEST(test_cfg_load_bind_lines)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], want[256];

    ck_assert_msg(cfg_test_load(&c,
                                "[server]\n"
                                "bind = 127.0.0.1:1\n"
                                "workers = 2\n"
                                "bind = unix:run/forkd.sock\n",
                                path, sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_uint_eq(c.n_binds, 2);
    ck_assert_int_eq(c.bind_lines[0], 2);
    ck_assert_int_eq(c.bind_lines[1], 4);
    /* A relative unix path is relative to the ini's directory. */
    snprintf(want, sizeof(want), "unix:%s/run/forkd.sock", cfg_test_dir);
    ck_assert_str_eq(c.binds[1], want);
    /* From the command line: line 0. */
    ck_assert_int_eq(cfg_set(&c, "bind", "127.0.0.1:3", err), 0);
    ck_assert_int_eq(c.bind_lines[2], 0);
    cfg_fini(&c);
}
END_TEST

/* A line of 199 characters is read whole by inih (200-byte buffer with the
 * NUL); one of 200 would be split silently, so it is refused by number. */
START_TEST(test_cfg_load_long_line)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], text[512], value[300];

    memset(value, 'v', 195);
    value[195] = '\0';
    snprintf(text, sizeof(text), "[app]\nk = %s\nnext = 1\n", value);
    ck_assert_uint_eq(strlen("k = ") + strlen(value), 199);
    ck_assert_msg(cfg_test_load(&c, text, path, sizeof(path), err) == 0, "%s",
                  err);
    ck_assert_uint_eq(c.n_opts, 2);
    ck_assert_str_eq(c.opts[0].value, value);
    ck_assert_str_eq(c.opts[1].key, "next");
    cfg_fini(&c);

    for (size_t n = 196; n <= 250; n += 54) { /* lines of 200 and 254 */
        memset(value, 'v', n);
        value[n] = '\0';
        snprintf(text, sizeof(text), "[app]\n\nk = %s\nnext = 1\n", value);
        ck_assert_int_eq(cfg_test_load(&c, text, path, sizeof(path), err), -1);
        cfg_test_err_at(err, path, 3, "k: ");
        ck_assert_ptr_nonnull(strstr(err, "too long"));
        cfg_fini(&c);
    }
}
END_TEST

START_TEST(test_cfg_load_long_comment_line)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], text[512], line[300];

    /* Even a comment: inih would take its tail as a line of its own. */
    line[0] = ';';
    memset(line + 1, 'c', 209);
    line[210] = '\0';
    snprintf(text, sizeof(text), "[server]\n%s\nworkers = 2\n", line);
    ck_assert_int_eq(cfg_test_load(&c, text, path, sizeof(path), err), -1);
    cfg_test_err_at(err, path, 2, "");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_missing_file)
{
    struct cfg c;
    char err[CFG_ERR_MAX], path[128];

    snprintf(path, sizeof(path), "%s/nope.ini", cfg_test_dir);
    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_int_eq(cfg_load(&c, path, err), -1);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0 &&
                      err[strlen(path)] == ':',
                  "error \"%s\" does not name %s", err, path);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_unknown_section)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_test_load(&c,
                                   "[server]\n"
                                   "workers = 2\n"
                                   "[sever]\n"
                                   "backlog = 3\n",
                                   path, sizeof(path), err),
                     -1);
    cfg_test_err_at(err, path, 4, "backlog:");
    ck_assert_ptr_nonnull(strstr(err, "[sever]"));
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_key_before_section)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_int_eq(
        cfg_test_load(&c, "workers = 2\n", path, sizeof(path), err), -1);
    cfg_test_err_at(err, path, 1, "workers:");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_syntax_errors)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_int_eq(
        cfg_test_load(&c, "[server]\nworkers 2\n", path, sizeof(path), err),
        -1);
    cfg_test_err_at(err, path, 2, "");
    cfg_fini(&c);
    ck_assert_int_eq(cfg_test_load(&c, "[server]\nworkers = 2\n[app\n", path,
                                   sizeof(path), err),
                     -1);
    cfg_test_err_at(err, path, 3, "");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_app_path_relative)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], want[256];

    ck_assert_msg(cfg_test_load(&c,
                                "[server]\n"
                                "workers = 1\n"
                                "[app]\n"
                                "path = handlers/app.so\n",
                                path, sizeof(path), err) == 0,
                  "%s", err);
    snprintf(want, sizeof(want), "%s/handlers/app.so", cfg_test_dir);
    ck_assert_str_eq(c.app_path, want);
    ck_assert_int_eq(c.app_line, 4);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_app_path_absolute)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_msg(cfg_test_load(&c, "[app]\npath = /abs/app.so\n", path,
                                sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_str_eq(c.app_path, "/abs/app.so");
    ck_assert_int_eq(c.app_line, 2);
    cfg_fini(&c);
}
END_TEST

/* An ini named without a directory: relative paths against the cwd. */
START_TEST(test_cfg_load_relative_ini_path)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], want[256], old[PATH_MAX];
    struct stat got, st;

    ck_assert_ptr_nonnull(getcwd(old, sizeof(old)));
    ck_assert_int_eq(cfg_init(&c), 0);
    cfg_test_write(path, sizeof(path), "rel.ini", "[app]\npath = x.so\n");
    ck_assert_int_eq(chdir(cfg_test_dir), 0);
    ck_assert_msg(cfg_load(&c, "rel.ini", err) == 0, "%s", err);
    ck_assert_int_eq(chdir(old), 0);
    ck_assert_str_eq(c.file, "rel.ini");
    /* Absolute, and the same file as dir/x.so ("dir/./x.so" is fine). */
    ck_assert_int_eq(c.app_path[0], '/');
    snprintf(want, sizeof(want), "%s/x.so", cfg_test_dir);
    cfg_test_write(path, sizeof(path), "x.so", "");
    ck_assert_int_eq(stat(c.app_path, &got), 0);
    ck_assert_int_eq(stat(want, &st), 0);
    ck_assert_uint_eq(got.st_ino, st.st_ino);
    ck_assert_uint_eq(got.st_dev, st.st_dev);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_relative_log_paths)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], want[256];

    ck_assert_msg(cfg_test_load(&c,
                                "[server]\n"
                                "error_log = logs/error.log\n"
                                "access_log = -\n",
                                path, sizeof(path), err) == 0,
                  "%s", err);
    snprintf(want, sizeof(want), "%s/logs/error.log", cfg_test_dir);
    ck_assert_str_eq(c.error_log, want);
    ck_assert_str_eq(c.access_log, "-"); /* stdout, not a file named "-" */
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_app_options_in_order)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_msg(cfg_test_load(&c,
                                "[app]\n"
                                "zeta = 1\n"
                                "path = /a.so\n"
                                "alpha = two words\n"
                                "zeta = 3\n"
                                "empty =\n",
                                path, sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_uint_eq(c.n_opts, 4); /* path is not an option */
    ck_assert_str_eq(c.opts[0].key, "zeta");
    ck_assert_str_eq(c.opts[0].value, "1");
    ck_assert_str_eq(c.opts[1].key, "alpha");
    ck_assert_str_eq(c.opts[1].value, "two words");
    ck_assert_str_eq(c.opts[2].key, "zeta");
    ck_assert_str_eq(c.opts[2].value, "3");
    ck_assert_str_eq(c.opts[3].key, "empty");
    ck_assert_str_eq(c.opts[3].value, "");
    ck_assert_str_eq(forkd_option(c.opts, c.n_opts, "zeta"), "3");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_repeated_bind_appends)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_msg(cfg_test_load(&c,
                                "[server]\n"
                                "bind = 127.0.0.1:1\n"
                                "workers = 2\n"
                                "bind = [::1]:2\n"
                                "bind = unix:/tmp/s\n",
                                path, sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_uint_eq(c.n_binds, 3);
    ck_assert_str_eq(c.binds[0], "127.0.0.1:1");
    ck_assert_str_eq(c.binds[1], "[::1]:2");
    ck_assert_str_eq(c.binds[2], "unix:/tmp/s");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_load_later_value_wins)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_msg(cfg_test_load(&c,
                                "[server]\nworkers = 2\n[app]\npath = /a.so\n"
                                "[server]\nworkers = 5\n",
                                path, sizeof(path), err) == 0,
                  "%s", err);
    ck_assert_uint_eq(c.workers, 5);
    cfg_fini(&c);
}
END_TEST

/* --- the command line -------------------------------------------------- */

START_TEST(test_cfg_set_numbers)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_msg(cfg_set(&c, "workers", "3", err) == 0, "%s", err);
    ck_assert_uint_eq(c.workers, 3);
    ck_assert_int_eq(cfg_set(&c, "limit_request_body", "123", err), 0);
    ck_assert_uint_eq(c.limit_request_body, 123);
    ck_assert_int_eq(cfg_set(&c, "workers", "0", err), -1);
    ck_assert_str_eq(err, "workers: expected an integer in 1..1024, got \"0\"");
    ck_assert_uint_eq(c.workers, 3); /* unchanged */
    ck_assert_int_eq(cfg_set(&c, "workers", "+4", err), -1);
    ck_assert_int_eq(cfg_set(&c, "threads", "1025", err), -1);
    ck_assert_int_eq(strncmp(err, "threads: ", 9), 0);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_set_unknown_key)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_int_eq(cfg_set(&c, "wrokers", "3", err), -1);
    ck_assert_int_eq(strncmp(err, "wrokers: ", 9), 0);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_set_app_against_cwd)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX], cwd[PATH_MAX], want[PATH_MAX + 32];

    /* A file's [app] path, then the command line's APP.so overrides it,
     * resolved against the working directory, not the ini's. */
    ck_assert_int_eq(
        cfg_test_load(&c, "[app]\npath = x.so\n", path, sizeof(path), err), 0);
    ck_assert_int_eq(c.app_line, 2);
    ck_assert_int_eq(cfg_set(&c, "app", "build/app/hello.so", err), 0);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    snprintf(want, sizeof(want), "%s/build/app/hello.so", cwd);
    ck_assert_str_eq(c.app_path, want);
    ck_assert_int_eq(c.app_line, 0);
    ck_assert_int_eq(cfg_set(&c, "app", "/abs.so", err), 0);
    ck_assert_str_eq(c.app_path, "/abs.so");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_set_bind_after_clear)
{
    struct cfg c;
    char path[128], err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_test_load(&c, "[server]\nbind = 127.0.0.1:1\n", path,
                                   sizeof(path), err),
                     0);
    ck_assert_int_eq(cfg_set(&c, "bind", "127.0.0.1:2", err), 0);
    ck_assert_uint_eq(c.n_binds, 2); /* appends */
    cfg_clear_binds(&c);
    ck_assert_uint_eq(c.n_binds, 0);
    ck_assert_int_eq(cfg_set(&c, "bind", "127.0.0.1:3", err), 0);
    ck_assert_int_eq(cfg_set(&c, "bind", "unix:/tmp/y", err), 0);
    ck_assert_uint_eq(c.n_binds, 2);
    ck_assert_str_eq(c.binds[0], "127.0.0.1:3");
    ck_assert_str_eq(c.binds[1], "unix:/tmp/y");
    cfg_fini(&c);
}
END_TEST

/* --- final checks ------------------------------------------------------ */

START_TEST(test_cfg_check_needs_app)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    err[0] = '\0';
    ck_assert_int_eq(cfg_check(&c, err), -1);
    ck_assert_int_eq(strncmp(err, "path: ", 6), 0);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_check_default_bind)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_int_eq(cfg_set(&c, "app", "/a.so", err), 0);
    ck_assert_msg(cfg_check(&c, err) == 0, "%s", err);
    ck_assert_uint_eq(c.n_binds, 1);
    ck_assert_str_eq(c.binds[0], "127.0.0.1:8000");
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_check_head_smaller_than_line)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_int_eq(cfg_set(&c, "app", "/a.so", err), 0);
    ck_assert_int_eq(cfg_set(&c, "limit_request_line", "1024", err), 0);
    ck_assert_int_eq(cfg_set(&c, "limit_request_field_size", "256", err), 0);
    ck_assert_int_eq(cfg_set(&c, "limit_request_head", "512", err), 0);
    ck_assert_int_eq(cfg_check(&c, err), -1);
    ck_assert_int_eq(strncmp(err, "limit_request_head: ", 20), 0);
    /* Equal is fine. */
    ck_assert_int_eq(cfg_set(&c, "limit_request_head", "1024", err), 0);
    ck_assert_msg(cfg_check(&c, err) == 0, "%s", err);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_cfg_check_head_smaller_than_field)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    ck_assert_int_eq(cfg_init(&c), 0);
    ck_assert_int_eq(cfg_set(&c, "app", "/a.so", err), 0);
    ck_assert_int_eq(cfg_set(&c, "limit_request_line", "256", err), 0);
    ck_assert_int_eq(cfg_set(&c, "limit_request_field_size", "4096", err), 0);
    ck_assert_int_eq(cfg_set(&c, "limit_request_head", "2048", err), 0);
    ck_assert_int_eq(cfg_check(&c, err), -1);
    ck_assert_int_eq(strncmp(err, "limit_request_head: ", 20), 0);
    cfg_fini(&c);
}
END_TEST

static Suite *
cfg_suite(void)
{
    Suite *s = suite_create("cfg");
    TCase *tc = tcase_create("cfg");

    /* One directory for the suite, made and removed by the runner itself
     * so that a failing test leaves nothing behind; the tests overwrite
     * their files. */
    tcase_add_unchecked_fixture(tc, cfg_test_setup, cfg_test_teardown);
    tcase_add_test(tc, test_cfg_init_defaults);
    tcase_add_test(tc, test_cfg_fini_then_init_again);
    tcase_add_test(tc, test_cfg_load_every_key);
    tcase_add_test(tc, test_cfg_load_colon_and_comments);
    tcase_add_test(tc, test_cfg_load_unknown_key);
    tcase_add_test(tc, test_cfg_load_first_error_kept);
    tcase_add_test(tc, test_cfg_load_line_after_continuation);
    tcase_add_test(tc, test_cfg_load_inline_comment_before_equals);
    tcase_add_test(tc, test_cfg_load_bad_workers);
    tcase_add_test(tc, test_cfg_load_bad_message);
    tcase_add_test(tc, test_cfg_load_workers_bounds);
    tcase_add_test(tc, test_cfg_load_trims_spaces);
    tcase_add_test(tc, test_cfg_load_threads_bounds);
    tcase_add_test(tc, test_cfg_load_bad_log_level);
    tcase_add_test(tc, test_cfg_load_bad_access_log_format);
    tcase_add_test(tc, test_cfg_load_log_levels);
    tcase_add_test(tc, test_cfg_load_bad_limits);
    tcase_add_test(tc, test_cfg_load_bad_bind);
    tcase_add_test(tc, test_cfg_load_bind_lines);
    tcase_add_test(tc, test_cfg_load_long_line);
    tcase_add_test(tc, test_cfg_load_long_comment_line);
    tcase_add_test(tc, test_cfg_load_missing_file);
    tcase_add_test(tc, test_cfg_load_unknown_section);
    tcase_add_test(tc, test_cfg_load_key_before_section);
    tcase_add_test(tc, test_cfg_load_syntax_errors);
    tcase_add_test(tc, test_cfg_load_app_path_relative);
    tcase_add_test(tc, test_cfg_load_app_path_absolute);
    tcase_add_test(tc, test_cfg_load_relative_ini_path);
    tcase_add_test(tc, test_cfg_load_relative_log_paths);
    tcase_add_test(tc, test_cfg_load_app_options_in_order);
    tcase_add_test(tc, test_cfg_load_repeated_bind_appends);
    tcase_add_test(tc, test_cfg_load_later_value_wins);
    tcase_add_test(tc, test_cfg_set_numbers);
    tcase_add_test(tc, test_cfg_set_unknown_key);
    tcase_add_test(tc, test_cfg_set_app_against_cwd);
    tcase_add_test(tc, test_cfg_set_bind_after_clear);
    tcase_add_test(tc, test_cfg_check_needs_app);
    tcase_add_test(tc, test_cfg_check_default_bind);
    tcase_add_test(tc, test_cfg_check_head_smaller_than_line);
    tcase_add_test(tc, test_cfg_check_head_smaller_than_field);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(cfg_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
