/* test_app: loading a handler .so and checking its descriptor, running its
 * init and fini, and forkd_option.  Small handlers are compiled at test time
 * (cc -shared -fPIC -I app) into a temp directory; the tests run from the
 * repository root.  The real example is FORKD_APPS/hello.so (build/app by
 * default). */
#include "app.h"

#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "fixture.h"
#include "forkd.h"

static char app_test_dir[64];
static struct cfg app_test_no_opts; /* no [app] options */

/* The handlers, compiled once for the whole suite. */
static const struct test_handler app_test_sources[] = {
    {"nosym", "int not_a_forkd_app = 1;\n"},
    {"badver", "#include \"forkd.h\"\n"
               "static int h(struct forkd_req *r, void *s)\n"
               "{ (void)r; (void)s; return 0; }\n"
               "const struct forkd_app forkd_app = {\n"
               "    .api_version = 999, .handle = h };\n"},
    {"nohandle", "#include \"forkd.h\"\n"
                 "const struct forkd_app forkd_app = {\n"
                 "    .api_version = FORKD_API_VERSION, .handle = 0 };\n"},
    {"unsafe", "#include \"forkd.h\"\n"
               "static int h(struct forkd_req *r, void *s)\n"
               "{ (void)r; (void)s; return 0; }\n"
               "const struct forkd_app forkd_app = {\n"
               "    .api_version = FORKD_API_VERSION, .handle = h };\n"},
    {"safe", "#include \"forkd.h\"\n"
             "static int h(struct forkd_req *r, void *s)\n"
             "{ (void)r; (void)s; return 0; }\n"
             "const struct forkd_app forkd_app = {\n"
             "    .api_version = FORKD_API_VERSION,\n"
             "    .flags = FORKD_APP_THREADSAFE, .handle = h };\n"},
    {"initfail", "#include \"forkd.h\"\n"
                 "int app_test_fini_calls;\n"
                 "static int i(const struct forkd_option *o, size_t n,\n"
                 "             void **s)\n"
                 "{ (void)o; (void)n; *s = &app_test_fini_calls;\n"
                 "  return -1; }\n"
                 "static int h(struct forkd_req *r, void *s)\n"
                 "{ (void)r; (void)s; return 0; }\n"
                 "static void f(void *s) { ++*(int *)s; }\n"
                 "const struct forkd_app forkd_app = {\n"
                 "    .api_version = FORKD_API_VERSION,\n"
                 "    .init = i, .handle = h, .fini = f };\n"},
    /* init sees the options through forkd_option, which the handler
     * resolves against the executable (-rdynamic). */
    {"initok", "#include <stdio.h>\n"
               "#include \"forkd.h\"\n"
               "char app_test_seen[128];\n"
               "int app_test_fini_calls;\n"
               "static int i(const struct forkd_option *o, size_t n,\n"
               "             void **s)\n"
               "{ const char *g = forkd_option(o, n, \"greeting\");\n"
               "  const char *d = forkd_option_dir(o, n, \"greeting\");\n"
               "  snprintf(app_test_seen, sizeof(app_test_seen),\n"
               "           \"%zu:%s:%s\", n, g ? g : \"(none)\",\n"
               "           d ? d : \"(none)\");\n"
               "  *s = &app_test_fini_calls; return 0; }\n"
               "static int h(struct forkd_req *r, void *s)\n"
               "{ (void)r; (void)s; return 0; }\n"
               "static void f(void *s) { ++*(int *)s; }\n"
               "const struct forkd_app forkd_app = {\n"
               "    .api_version = FORKD_API_VERSION,\n"
               "    .init = i, .handle = h, .fini = f };\n"},
    /* Version 2's hooks: preload returns what option "preload" says and
     * leaves a state that init sees; atfork counts its calls. */
    {"preload", "#include <string.h>\n"
                "#include \"forkd.h\"\n"
                "int app_test_state, app_test_init_saw, app_test_forks;\n"
                "static int p(const struct forkd_option *o, size_t n,\n"
                "             void **s)\n"
                "{ const char *v = forkd_option(o, n, \"preload\");\n"
                "  *s = &app_test_state;\n"
                "  return v ? (strcmp(v, \"yes\") ? -1 : 1) : 0; }\n"
                "static void af(enum forkd_fork_phase ph, void *s)\n"
                "{ (void)s; app_test_forks += 1 + (int)ph * 10; }\n"
                "static int i(const struct forkd_option *o, size_t n,\n"
                "             void **s)\n"
                "{ (void)o; (void)n; app_test_init_saw = *s != 0;\n"
                "  return 0; }\n"
                "static int h(struct forkd_req *r, void *s)\n"
                "{ (void)r; (void)s; return 0; }\n"
                "const struct forkd_app forkd_app = {\n"
                "    .api_version = FORKD_API_VERSION, .init = i,\n"
                "    .handle = h, .preload = p, .atfork = af };\n"},
    /* A version-1 descriptor: it ends after fini. */
    {"v1", "struct forkd_req;\n"
           "static int h(struct forkd_req *r, void *s)\n"
           "{ (void)r; (void)s; return 0; }\n"
           "struct v1 { unsigned v, f; void *i; void *h; void *fi; };\n"
           "const struct v1 forkd_app = { 1, 0, 0, (void *)h, 0 };\n"},
    /* RTLD_NOW: an unresolved symbol fails at load, not mid-request. */
    {"undef", "#include \"forkd.h\"\n"
              "void forkd_no_such_call(void);\n"
              "static int h(struct forkd_req *r, void *s)\n"
              "{ (void)r; (void)s; forkd_no_such_call(); return 0; }\n"
              "const struct forkd_app forkd_app = {\n"
              "    .api_version = FORKD_API_VERSION, .handle = h };\n"},
};

#define APP_TEST_N (sizeof(app_test_sources) / sizeof(app_test_sources[0]))

static void
app_test_build_all(void)
{
    test_handlers_build(app_test_dir, "app", app_test_sources, APP_TEST_N);
}

static void
app_test_remove_all(void)
{
    test_rmdir(app_test_dir);
}

static const char *
app_test_so(const char *name)
{
    static char path[160];

    snprintf(path, sizeof(path), "%s/%s.so", app_test_dir, name);
    return path;
}

/* app_open on name must fail with an err containing want. */
static void
app_test_refused(const char *name, unsigned threads, const char *want)
{
    struct app a;
    char err[APP_ERR_MAX] = "";

    ck_assert_msg(app_open(&a, app_test_so(name), threads, err) == -1,
                  "%s.so accepted", name);
    ck_assert_msg(strstr(err, want) != NULL, "%s.so: \"%s\" lacks \"%s\"", name,
                  err, want);
    /* Nothing is kept from a refused handler. */
    ck_assert_ptr_null(a.dl);
    ck_assert_ptr_null(a.desc);
    ck_assert_ptr_null(a.path);
    app_close(&a); /* and closing it again is harmless */
}

START_TEST(test_app_open_hello)
{
    const char *dir = getenv("FORKD_APPS");
    char path[512], err[APP_ERR_MAX] = "";
    struct app a;

    snprintf(path, sizeof(path), "%s/hello.so", dir ? dir : "build/app");
    ck_assert_msg(app_open(&a, path, 1, err) == 0, "%s: %s", path, err);
    ck_assert_ptr_nonnull(a.dl);
    ck_assert_ptr_nonnull(a.desc);
    ck_assert_uint_eq(a.desc->api_version, FORKD_API_VERSION);
    ck_assert_ptr_nonnull(a.desc->handle);
    ck_assert_str_eq(a.path, path);
    /* hello has no init: app_init succeeds with no state. */
    ck_assert_int_eq(app_init(&a, &app_test_no_opts), 0);
    ck_assert_ptr_null(a.state);
    app_fini(&a);
    app_close(&a);
    ck_assert_ptr_null(a.dl);
    ck_assert_ptr_null(a.path);
    /* hello is thread-safe: threads > 1 is fine. */
    ck_assert_msg(app_open(&a, path, 4, err) == 0, "%s", err);
    app_close(&a);
}
END_TEST

START_TEST(test_app_open_missing)
{
    struct app a;
    char err[APP_ERR_MAX] = "", path[160];

    snprintf(path, sizeof(path), "%s/missing.so", app_test_dir);
    ck_assert_int_eq(app_open(&a, path, 1, err), -1);
    ck_assert_msg(strstr(err, "cannot load") != NULL, "\"%s\"", err);
    ck_assert_ptr_null(a.dl);
}
END_TEST

START_TEST(test_app_open_not_a_shared_object)
{
    struct app a;
    char err[APP_ERR_MAX] = "", path[160];

    /* The C source next to it is not loadable. */
    snprintf(path, sizeof(path), "%s/safe.c", app_test_dir);
    ck_assert_int_eq(app_open(&a, path, 1, err), -1);
    ck_assert_msg(strstr(err, "cannot load") != NULL, "\"%s\"", err);
}
END_TEST

START_TEST(test_app_open_no_descriptor)
{
    app_test_refused("nosym", 1, "no forkd_app");
}
END_TEST

START_TEST(test_app_open_wrong_version)
{
    char want[64];

    app_test_refused("badver", 1, "999");
    snprintf(want, sizeof(want), "version 999, this forkd loads %u to %u",
             FORKD_API_MIN, FORKD_API_VERSION);
    app_test_refused("badver", 1, want);
}
END_TEST

START_TEST(test_app_open_null_handle)
{
    app_test_refused("nohandle", 1, "handle is NULL");
}
END_TEST

START_TEST(test_app_open_threads_unsafe)
{
    struct app a;
    char err[APP_ERR_MAX] = "";

    app_test_refused("unsafe", 2, "FORKD_APP_THREADSAFE");
    /* One thread needs no flag; a thread-safe handler may have more. */
    ck_assert_msg(app_open(&a, app_test_so("unsafe"), 1, err) == 0, "%s", err);
    app_close(&a);
    ck_assert_msg(app_open(&a, app_test_so("safe"), 2, err) == 0, "%s", err);
    app_close(&a);
}
END_TEST

START_TEST(test_app_open_unresolved_symbol)
{
    app_test_refused("undef", 1, "cannot load");
}
END_TEST

START_TEST(test_app_init_fails)
{
    struct app a;
    char err[APP_ERR_MAX] = "";
    int *fini_calls;

    ck_assert_msg(app_open(&a, app_test_so("initfail"), 1, err) == 0, "%s",
                  err);
    ck_assert_int_eq(app_init(&a, &app_test_no_opts), -1);
    fini_calls = dlsym(a.dl, "app_test_fini_calls");
    ck_assert_ptr_nonnull(fini_calls);
    /* "Run fini if init succeeded" (app.h): it did not. */
    app_fini(&a);
    ck_assert_int_eq(*fini_calls, 0);
    app_close(&a);
}
END_TEST

START_TEST(test_app_init_options)
{
    static struct forkd_option opts[] = {
        {"greeting", "hello"}, {"other", "x"}, {"greeting", "bonjour"}};
    static char *dirs[] = {"/etc/a", "/start", "/etc/b"};
    struct cfg c = {.opts = opts, .opt_dirs = dirs, .n_opts = 3};
    struct app a;
    char err[APP_ERR_MAX] = "";
    const char *seen;
    int *fini_calls;

    ck_assert_msg(app_open(&a, app_test_so("initok"), 1, err) == 0, "%s", err);
    ck_assert_int_eq(app_init(&a, &c), 0);
    seen = dlsym(a.dl, "app_test_seen");
    fini_calls = dlsym(a.dl, "app_test_fini_calls");
    ck_assert_ptr_nonnull(seen);
    ck_assert_ptr_nonnull(fini_calls);
    ck_assert_str_eq(seen, "3:bonjour:/etc/b"); /* the last one wins */
    /* Outside init, or for another array: no directory. */
    ck_assert_ptr_null(forkd_option_dir(opts, 3, "greeting"));
    ck_assert_ptr_eq(a.state, fini_calls);
    ck_assert_int_eq(*fini_calls, 0);
    app_fini(&a);
    ck_assert_int_eq(*fini_calls, 1);
    app_close(&a);
}
END_TEST

START_TEST(test_app_init_no_options)
{
    struct app a;
    char err[APP_ERR_MAX] = "";

    ck_assert_msg(app_open(&a, app_test_so("initok"), 1, err) == 0, "%s", err);
    ck_assert_int_eq(app_init(&a, &app_test_no_opts), 0);
    ck_assert_str_eq(dlsym(a.dl, "app_test_seen"), "0:(none):(none)");
    app_fini(&a);
    app_close(&a);
}
END_TEST

START_TEST(test_app_option_lookup)
{
    static const struct forkd_option opts[] = {
        {"a", "1"}, {"b", "2"}, {"a", "3"}, {"empty", ""}};

    ck_assert_str_eq(forkd_option(opts, 4, "a"), "3"); /* last wins */
    ck_assert_str_eq(forkd_option(opts, 4, "b"), "2");
    ck_assert_str_eq(forkd_option(opts, 4, "empty"), "");
    ck_assert_ptr_null(forkd_option(opts, 4, "missing"));
    ck_assert_ptr_null(forkd_option(opts, 4, "A"));    /* case matters */
    ck_assert_str_eq(forkd_option(opts, 2, "a"), "1"); /* only n_opts */
    ck_assert_ptr_null(forkd_option(opts, 0, "a"));
    ck_assert_ptr_null(forkd_option(NULL, 3, "a"));
    ck_assert_ptr_null(forkd_option(opts, 4, NULL));
}
END_TEST

/* preload returns 1, 0 or -1 as the handler says; 1 keeps the state
 * for init, anything else drops it; atfork reaches the handler. */
START_TEST(test_app_preload_hooks)
{
    static struct forkd_option yes[] = {{"preload", "yes"}};
    static struct forkd_option bad[] = {{"preload", "fail"}};
    static char *dirs[] = {"/d"};
    struct cfg cy = {.opts = yes, .opt_dirs = dirs, .n_opts = 1};
    struct cfg cb = {.opts = bad, .opt_dirs = dirs, .n_opts = 1};
    struct app a;
    char err[APP_ERR_MAX] = "";

    ck_assert_msg(app_open(&a, app_test_so("preload"), 1, err) == 0, "%s", err);
    ck_assert_int_eq(app_has_preload(&a), 1);
    ck_assert_int_eq(app_preload(&a, &app_test_no_opts), 0);
    ck_assert_ptr_null(a.state);
    ck_assert_int_eq(app_preload(&a, &cb), -1);
    ck_assert_ptr_null(a.state);
    ck_assert_int_eq(app_preload(&a, &cy), 1);
    ck_assert_ptr_eq(a.state, dlsym(a.dl, "app_test_state"));
    app_atfork(&a, FORKD_FORK_PREPARE);
    app_atfork(&a, FORKD_FORK_PARENT);
    app_atfork(&a, FORKD_FORK_CHILD);
    ck_assert_int_eq(*(int *)dlsym(a.dl, "app_test_forks"), 33);
    ck_assert_int_eq(app_init(&a, &cy), 0);
    ck_assert_int_eq(*(int *)dlsym(a.dl, "app_test_init_saw"), 1);
    app_fini(&a);
    app_close(&a);
}
END_TEST

/* A version-1 descriptor loads, and nothing past its end is read. */
START_TEST(test_app_version_1_loads)
{
    struct app a;
    char err[APP_ERR_MAX] = "";

    ck_assert_msg(app_open(&a, app_test_so("v1"), 1, err) == 0, "%s", err);
    ck_assert_uint_eq(a.desc->api_version, 1);
    ck_assert_int_eq(app_has_preload(&a), 0);
    ck_assert_int_eq(app_preload(&a, &app_test_no_opts), 0);
    app_atfork(&a, FORKD_FORK_PREPARE); /* no hook: nothing happens */
    ck_assert_int_eq(app_init(&a, &app_test_no_opts), 0);
    app_fini(&a);
    app_close(&a);
}
END_TEST

static Suite *
app_suite(void)
{
    Suite *s = suite_create("app");
    TCase *tc = tcase_create("app");

    /* Unchecked: compiled once, in the runner, not in every forked test. */
    tcase_add_unchecked_fixture(tc, app_test_build_all, app_test_remove_all);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_app_open_hello);
    tcase_add_test(tc, test_app_open_missing);
    tcase_add_test(tc, test_app_open_not_a_shared_object);
    tcase_add_test(tc, test_app_open_no_descriptor);
    tcase_add_test(tc, test_app_open_wrong_version);
    tcase_add_test(tc, test_app_open_null_handle);
    tcase_add_test(tc, test_app_open_threads_unsafe);
    tcase_add_test(tc, test_app_open_unresolved_symbol);
    tcase_add_test(tc, test_app_init_fails);
    tcase_add_test(tc, test_app_init_options);
    tcase_add_test(tc, test_app_init_no_options);
    tcase_add_test(tc, test_app_option_lookup);
    tcase_add_test(tc, test_app_preload_hooks);
    tcase_add_test(tc, test_app_version_1_loads);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(app_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
