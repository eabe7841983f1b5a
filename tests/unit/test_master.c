/* test_master: master_check_app, the master's look at a handler before it
 * starts anything: the handler is loaded in a child process (as the
 * workers' user when the master is root), never in the master (DESIGN 6).
 * What the child found comes back (API version, flags, whether it
 * preloads); a handler that fails to load, fails its init or preload
 * (--check), exits or crashes while loading is refused with a message
 * that says which.  The handlers are compiled at test time (cc -shared
 * -fPIC -I app) into a temp directory; the tests run from the repository
 * root, FORKD_APPS (build/app by default) holds the example handlers.
 *
 * master_run itself is the integration tests' (tests/integration): it
 * forks workers, handles signals and never returns until stopped. */
#include "master.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "fixture.h"
#include "forkd.h"

static char master_test_dir[64];

static const struct test_handler master_test_sources[] = {
    {"preload", "#include \"forkd.h\"\n"
                "static int h(struct forkd_req *r, void *s)\n"
                "{ (void)r; (void)s; return 0; }\n"
                "static int p(const struct forkd_option *o, size_t n,\n"
                "             void **s) { (void)o; (void)n; (void)s;\n"
                "  return 1; }\n"
                "const struct forkd_app forkd_app = {\n"
                "    .api_version = FORKD_API_VERSION,\n"
                "    .flags = FORKD_APP_THREADSAFE,\n"
                "    .handle = h, .preload = p };\n"},
    {"init_fails", "#include \"forkd.h\"\n"
                   "static int h(struct forkd_req *r, void *s)\n"
                   "{ (void)r; (void)s; return 0; }\n"
                   "static int i(const struct forkd_option *o, size_t n,\n"
                   "             void **s) { (void)o; (void)n; (void)s;\n"
                   "  return -1; }\n"
                   "const struct forkd_app forkd_app = {\n"
                   "    .api_version = FORKD_API_VERSION,\n"
                   "    .handle = h, .init = i };\n"},
    {"preload_fails", "#include \"forkd.h\"\n"
                      "static int h(struct forkd_req *r, void *s)\n"
                      "{ (void)r; (void)s; return 0; }\n"
                      "static int p(const struct forkd_option *o, size_t n,\n"
                      "             void **s) { (void)o; (void)n; (void)s;\n"
                      "  return -1; }\n"
                      "const struct forkd_app forkd_app = {\n"
                      "    .api_version = FORKD_API_VERSION,\n"
                      "    .handle = h, .preload = p };\n"},
    /* Code that runs at load: a constructor that leaves, one that
     * crashes. */
    {"exits", "#include <unistd.h>\n"
              "__attribute__((constructor)) static void c(void)\n"
              "{ _exit(7); }\n"},
    {"crashes", "#include <signal.h>\n"
                "__attribute__((constructor)) static void c(void)\n"
                "{ raise(SIGKILL); }\n"}, /* ASan would catch a SEGV */
};

#define MASTER_TEST_N                                                          \
    (sizeof(master_test_sources) / sizeof(master_test_sources[0]))

static void
master_test_build_all(void)
{
    test_handlers_build(master_test_dir, "master", master_test_sources,
                        MASTER_TEST_N);
}

static void
master_test_remove_all(void)
{
    test_rmdir(master_test_dir);
}

/* A configuration with defaults whose handler is path. */
static void
master_test_cfg(struct cfg *c, const char *path)
{
    ck_assert_int_eq(cfg_init(c), 0);
    free(c->app_path);
    c->app_path = strdup(path);
    ck_assert_ptr_nonnull(c->app_path);
}

static const char *
master_test_so(const char *name)
{
    static char path[160];

    snprintf(path, sizeof(path), "%s/%s.so", master_test_dir, name);
    return path;
}

/* master_check_app on path must fail with an err containing want. */
static void
master_test_refused(const char *path, int run_init, const char *want)
{
    struct cfg c;
    struct master_app_info info;
    char err[APP_ERR_MAX] = "";

    master_test_cfg(&c, path);
    ck_assert_msg(master_check_app(&c, run_init, &info, err) == -1,
                  "%s accepted", path);
    ck_assert_msg(strstr(err, want) != NULL, "%s: \"%s\" lacks \"%s\"", path,
                  err, want);
    cfg_fini(&c);
}

START_TEST(test_master_check_app_example)
{
    const char *dir = getenv("FORKD_APPS");
    char path[256], err[APP_ERR_MAX] = "";
    struct master_app_info info;
    struct cfg c;

    snprintf(path, sizeof(path), "%s/hello.so", dir ? dir : "build/app");
    master_test_cfg(&c, path);
    memset(&info, 0xff, sizeof(info));
    ck_assert_msg(master_check_app(&c, 1, &info, err) == 0, "%s", err);
    ck_assert_uint_eq(info.api_version, FORKD_API_VERSION);
    ck_assert_int_eq(info.has_preload, 0);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_master_check_app_preload)
{
    char err[APP_ERR_MAX] = "";
    struct master_app_info info;
    struct cfg c;

    master_test_cfg(&c, master_test_so("preload"));
    ck_assert_msg(master_check_app(&c, 0, &info, err) == 0, "%s", err);
    ck_assert_int_eq(info.has_preload, 1);
    ck_assert_uint_eq(info.flags, FORKD_APP_THREADSAFE);
    /* --check runs preload, then init with what it left. */
    ck_assert_msg(master_check_app(&c, 1, &info, err) == 0, "%s", err);
    cfg_fini(&c);
}
END_TEST

START_TEST(test_master_check_app_missing)
{
    master_test_refused(master_test_so("no-such-handler"), 0,
                        "no-such-handler.so");
    /* As root the child is the workers' user, and says so. */
    if (geteuid() == 0)
        master_test_refused(master_test_so("no-such-handler"), 0,
                            "as user nobody: ");
}
END_TEST

/* init and preload run only for --check (run_init). */
START_TEST(test_master_check_app_init_or_preload_fails)
{
    struct master_app_info info;
    char err[APP_ERR_MAX] = "";
    struct cfg c;

    master_test_cfg(&c, master_test_so("init_fails"));
    ck_assert_msg(master_check_app(&c, 0, &info, err) == 0, "%s", err);
    cfg_fini(&c);
    master_test_refused(master_test_so("init_fails"), 1,
                        "init failed with these [app] options");
    master_test_refused(master_test_so("preload_fails"), 1,
                        "preload failed with these [app] options");
}
END_TEST

START_TEST(test_master_check_app_exits_while_loading)
{
    master_test_refused(master_test_so("exits"), 0,
                        "loading it ended the process (status 7) before it "
                        "was checked");
}
END_TEST

START_TEST(test_master_check_app_crashes_while_loading)
{
    master_test_refused(master_test_so("crashes"), 0,
                        "loading it killed the process: Killed");
}
END_TEST

static Suite *
master_suite(void)
{
    Suite *s = suite_create("master");
    TCase *check = tcase_create("check_app");

    /* Built once by the runner, not per test. */
    tcase_add_unchecked_fixture(check, master_test_build_all,
                                master_test_remove_all);
    tcase_set_timeout(check, 20);
    tcase_add_test(check, test_master_check_app_example);
    tcase_add_test(check, test_master_check_app_preload);
    tcase_add_test(check, test_master_check_app_missing);
    tcase_add_test(check, test_master_check_app_init_or_preload_fails);
    tcase_add_test(check, test_master_check_app_exits_while_loading);
    tcase_add_test(check, test_master_check_app_crashes_while_loading);
    suite_add_tcase(s, check);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(master_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
