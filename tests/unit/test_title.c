/* test_title: process titles over the memory of argv and environ.  Each
 * test builds the block the kernel gives a process (argv's strings, then
 * environ's, back to back) and a fake environ pointing into it, as main
 * sees them: title_init must copy argv, move environ to the heap (getenv
 * and setenv keep working) and note the room; title_set writes "forkd: "
 * and the rest there, cut to the room and NUL-padded; title_args is the
 * command line after argv[0].  Each test runs in its own process (check's
 * fork mode): title keeps its state in statics. */
#include "title.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define TITLE_TEST_BLOCK 256

struct title_test {
    char block[TITLE_TEST_BLOCK]; /* what the kernel laid out */
    char *argv[8];
    char *env[8];
    size_t used; /* bytes of block the strings take */
};

/* Lay argv's strings, then env's, back to back in t->block; environ
 * becomes t->env.  Both lists NULL-terminated. */
static void
title_test_layout(struct title_test *t, const char *const *argv,
                  const char *const *env)
{
    size_t at = 0, i;

    memset(t, 0, sizeof(*t));
    for (i = 0; argv[i] != NULL; i++) {
        t->argv[i] = strcpy(t->block + at, argv[i]);
        at += strlen(argv[i]) + 1;
    }
    for (i = 0; env[i] != NULL; i++) {
        t->env[i] = strcpy(t->block + at, env[i]);
        at += strlen(env[i]) + 1;
    }
    ck_assert_uint_le(at, sizeof(t->block));
    t->used = at;
    environ = t->env;
}

START_TEST(test_title_init_copies_argv_and_environ)
{
    static const char *const argv[] = {"forkd", "-c", "/etc/forkd.ini", NULL};
    static const char *const env[] = {"PATH=/bin", "LANG=C", NULL};
    struct title_test t;
    char **copy;

    title_test_layout(&t, argv, env);
    copy = title_init(3, t.argv);
    ck_assert_ptr_ne(copy, t.argv);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(copy[i], argv[i]);
        ck_assert_ptr_ne(copy[i], t.argv[i]); /* not in the block */
    }
    ck_assert_ptr_null(copy[3]);
    ck_assert_str_eq(title_args(), "-c /etc/forkd.ini");
    /* environ moved off the block, with the same strings. */
    ck_assert_ptr_ne(environ, t.env);
    ck_assert_str_eq(getenv("PATH"), "/bin");
    ck_assert_str_eq(getenv("LANG"), "C");
    ck_assert_ptr_ne(getenv("PATH"), t.env[0] + 5);
    ck_assert_int_eq(setenv("FORKD_TEST", "1", 1), 0);
    ck_assert_str_eq(getenv("FORKD_TEST"), "1");
}
END_TEST

START_TEST(test_title_set_writes_over_the_block)
{
    static const char *const argv[] = {"forkd", "-c", "/etc/forkd.ini", NULL};
    static const char *const env[] = {"PATH=/bin", "LANG=C", NULL};
    struct title_test t;

    title_test_layout(&t, argv, env);
    (void)title_init(3, t.argv);
    title_set("worker %d (gen %u)", 3, 2u);
    ck_assert_str_eq(t.block, "forkd: worker 3 (gen 2)");
    /* NUL to the end of the room: /proc/PID/cmdline ends at the title. */
    for (size_t i = strlen(t.block); i < t.used; i++)
        ck_assert_int_eq(t.block[i], 0);
    /* The copies argv and environ moved to are untouched. */
    ck_assert_str_eq(getenv("PATH"), "/bin");
}
END_TEST

START_TEST(test_title_set_cut_to_the_room)
{
    static const char *const argv[] = {"forkd", "-c", "/etc/forkd/forkd.ini",
                                       "-w",    "4",  NULL};
    static const char *const env[] = {"A=1", NULL};
    struct title_test t;
    char longer[200];

    title_test_layout(&t, argv, env);
    (void)title_init(5, t.argv);
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    t.block[t.used] = '#'; /* the first byte after the room */
    title_set("master %s", longer);
    ck_assert_uint_eq(strlen(t.block), t.used - 1);
    ck_assert_int_eq(strncmp(t.block, "forkd: master xx", 16), 0);
    ck_assert_int_eq(t.block[t.used], '#');
    ck_assert_str_eq(title_args(), "-c /etc/forkd/forkd.ini -w 4");
}
END_TEST

/* Only the strings back to back from argv[0] are room: an argv string
 * that lies elsewhere (set by a caller, not the kernel) ends it. */
START_TEST(test_title_room_ends_at_a_gap)
{
    static const char *const argv[] = {"forkd", NULL};
    static const char *const env[] = {NULL};
    struct title_test t;
    char elsewhere[] = "-v";
    char *args[3];

    title_test_layout(&t, argv, env);
    args[0] = t.argv[0];
    args[1] = elsewhere;
    args[2] = NULL;
    t.block[6] = '#'; /* after argv[0]: outside the room */
    (void)title_init(2, args);
    ck_assert_str_eq(title_args(), "-v");
    title_set("master"); /* room: "forkd\0", 6 bytes: less than 8 */
    ck_assert_str_eq(t.block, "forkd");
    ck_assert_int_eq(t.block[6], '#');
}
END_TEST

START_TEST(test_title_without_init)
{
    char **none = NULL;

    title_set("worker %d", 1); /* nowhere to write: nothing */
    ck_assert_str_eq(title_args(), "");
    ck_assert_ptr_eq(title_init(0, none), none); /* no argv at all */
}
END_TEST

START_TEST(test_title_empty_environ)
{
    static const char *const argv[] = {"forkd", "status", NULL};
    static const char *const env[] = {NULL};
    struct title_test t;
    char **copy;

    title_test_layout(&t, argv, env);
    copy = title_init(2, t.argv);
    ck_assert_str_eq(copy[1], "status");
    ck_assert_ptr_nonnull(environ);
    ck_assert_ptr_null(environ[0]);
    title_set("gen %d", 2); /* room: "forkd\0status\0", 13 bytes */
    ck_assert_str_eq(t.block, "forkd: gen 2");
}
END_TEST

static Suite *
title_suite(void)
{
    Suite *s = suite_create("title");
    TCase *tc = tcase_create("title");

    tcase_add_test(tc, test_title_init_copies_argv_and_environ);
    tcase_add_test(tc, test_title_set_writes_over_the_block);
    tcase_add_test(tc, test_title_set_cut_to_the_room);
    tcase_add_test(tc, test_title_room_ends_at_a_gap);
    tcase_add_test(tc, test_title_without_init);
    tcase_add_test(tc, test_title_empty_environ);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(title_suite());
    int failed;

    /* title keeps its state in statics: one process per test. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
