/* test_arena: the per-request arena: alignment, extra blocks for big
 * requests, reset (which must free the extras: ASan's leak check runs at the
 * end of every forked test) and strndup. */
#include "arena.h"

#include <check.h>
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN (alignof(max_align_t))

static int
arena_test_in_first(const struct arena *a, const void *p)
{
    /* The first block's data follows its next pointer, padded to ALIGN
     * (struct arena_block in arena.c). */
    const char *data = (const char *)a->first + ALIGN;
    const char *q = p;

    return q >= data && q < data + a->cap;
}

START_TEST(test_arena_init_empty)
{
    struct arena a;

    ck_assert_int_eq(arena_init(&a, 1024), 0);
    ck_assert_ptr_nonnull(a.first);
    ck_assert_ptr_null(a.extra);
    ck_assert_uint_eq(a.used, 0);
    ck_assert_uint_eq(a.cap, 1024);
    arena_fini(&a);
    ck_assert_ptr_null(a.first);
    ck_assert_uint_eq(a.cap, 0);
}
END_TEST

START_TEST(test_arena_alignment)
{
    struct arena a;
    static const size_t sizes[] = {1, 3, 8, 15, 16, 17, 31, 100, 1, 7};

    ck_assert_int_eq(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = arena_alloc(&a, sizes[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg((uintptr_t)p % ALIGN == 0,
                      "allocation %zu (%zu bytes) at %p not aligned to %zu", i,
                      sizes[i], p, (size_t)ALIGN);
        ck_assert(arena_test_in_first(&a, p));
        memset(p, 0xa5, sizes[i]); /* ASan: the bytes really are ours */
    }
    /* Nothing so far needed an extra block. */
    ck_assert_ptr_null(a.extra);
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_allocations_disjoint)
{
    struct arena a;
    char *p, *q;

    ck_assert_int_eq(arena_init(&a, 256), 0);
    p = arena_alloc(&a, 10);
    q = arena_alloc(&a, 10);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ck_assert(q >= p + 10 || p >= q + 10);
    memset(p, 'p', 10);
    memset(q, 'q', 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(p[i], 'p');
        ck_assert_int_eq(q[i], 'q');
    }
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_zero_size)
{
    struct arena a;
    void *p, *q;

    ck_assert_int_eq(arena_init(&a, 256), 0);
    p = arena_alloc(&a, 0);
    q = arena_alloc(&a, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_ne(p, q); /* distinct, like malloc(1) */
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_big_allocation)
{
    struct arena a;
    char *small, *big, *after;

    ck_assert_int_eq(arena_init(&a, 256), 0);
    small = arena_alloc(&a, 16);
    ck_assert_ptr_nonnull(small);
    big = arena_alloc(&a, 100000);
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_eq((uintptr_t)big % ALIGN, 0);
    ck_assert_ptr_nonnull(a.extra);
    ck_assert(!arena_test_in_first(&a, big));
    memset(big, 'x', 100000); /* ASan: all of it is ours */
    ck_assert_int_eq(big[99999], 'x');
    /* The first block is still used for what fits. */
    after = arena_alloc(&a, 16);
    ck_assert(arena_test_in_first(&a, after));
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_fill_first_then_extra)
{
    struct arena a;
    void *p, *q;

    ck_assert_int_eq(arena_init(&a, 64), 0);
    p = arena_alloc(&a, 64); /* exactly the block */
    ck_assert_ptr_nonnull(p);
    ck_assert(arena_test_in_first(&a, p));
    ck_assert_uint_eq(a.used, 64);
    q = arena_alloc(&a, 1); /* no room left */
    ck_assert_ptr_nonnull(q);
    ck_assert(!arena_test_in_first(&a, q));
    ck_assert_ptr_nonnull(a.extra);
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_reset_frees_extras)
{
    struct arena a;
    char *first, *again;

    ck_assert_int_eq(arena_init(&a, 128), 0);
    first = arena_alloc(&a, 32);
    for (int i = 0; i < 10; i++)
        ck_assert_ptr_nonnull(arena_alloc(&a, 1000 + (size_t)i));
    ck_assert_ptr_nonnull(a.extra);
    arena_reset(&a);
    ck_assert_ptr_null(a.extra);
    ck_assert_uint_eq(a.used, 0);
    ck_assert_ptr_nonnull(a.first); /* kept for the next request */
    ck_assert_uint_eq(a.cap, 128);
    /* The first block is reused from its start. */
    again = arena_alloc(&a, 32);
    ck_assert_ptr_eq(again, first);
    /* Several rounds: under ASan a leaked extra block fails the test. */
    for (int round = 0; round < 5; round++) {
        ck_assert_ptr_nonnull(arena_alloc(&a, 5000));
        arena_reset(&a);
        ck_assert_ptr_null(a.extra);
    }
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_overflow)
{
    struct arena a;

    ck_assert_int_eq(arena_init(&a, 128), 0);
    errno = 0;
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 8));
    ck_assert_int_eq(errno, ENOMEM);
    /* Still usable afterwards. */
    ck_assert_ptr_nonnull(arena_alloc(&a, 8));
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_strndup)
{
    struct arena a;
    char *s;

    ck_assert_int_eq(arena_init(&a, 128), 0);
    s = arena_strndup(&a, "hello world", 5);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "hello");
    s = arena_strndup(&a, "", 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    /* Bytes after len are not read: no terminator needed in the source. */
    char raw[3] = {'a', 'b', 'c'};
    s = arena_strndup(&a, raw, sizeof(raw));
    ck_assert_str_eq(s, "abc");
    /* Longer than the first block: an extra block. */
    char big[1000];
    memset(big, 'z', sizeof(big));
    s = arena_strndup(&a, big, sizeof(big));
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), sizeof(big));
    ck_assert_ptr_null(arena_strndup(&a, "x", SIZE_MAX));
    arena_fini(&a);
}
END_TEST

START_TEST(test_arena_fini_twice_safe)
{
    struct arena a;

    ck_assert_int_eq(arena_init(&a, 64), 0);
    ck_assert_ptr_nonnull(arena_alloc(&a, 1000));
    arena_fini(&a);
    arena_fini(&a); /* no double free */
    ck_assert_ptr_null(a.first);
    ck_assert_ptr_null(a.extra);
}
END_TEST

static Suite *
arena_suite(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("arena");

    tcase_add_test(tc, test_arena_init_empty);
    tcase_add_test(tc, test_arena_alignment);
    tcase_add_test(tc, test_arena_allocations_disjoint);
    tcase_add_test(tc, test_arena_zero_size);
    tcase_add_test(tc, test_arena_big_allocation);
    tcase_add_test(tc, test_arena_fill_first_then_extra);
    tcase_add_test(tc, test_arena_reset_frees_extras);
    tcase_add_test(tc, test_arena_overflow);
    tcase_add_test(tc, test_arena_strndup);
    tcase_add_test(tc, test_arena_fini_twice_safe);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(arena_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
