/* test_body: the request body after its head: Content-Length bytes counted
 * and chunked coding decoded strictly (RFC 9112 7.1), however the bytes
 * arrive and however small the output buffer.  Every piece handed to
 * body_decode is a heap copy of exactly its length, so that ASan sees any
 * read past it; the body must end exactly where it ends, leaving pipelined
 * bytes unused. */
#include "body.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_TEST_OUT 8192
#define BODY_TEST_FRAMING 32768

/* What feeding a whole input gave. */
struct body_test_out {
    char out[BODY_TEST_OUT];
    size_t out_len;
    size_t used; /* input bytes used */
    int done;
    int rc; /* 0, or -1 with err */
    int err;
};

/* Feed in[0..len) to b, at most feed bytes per call (each a heap copy of
 * exactly that length) with out_cap bytes of room for the body each call,
 * until the body is done, the input is used up or an error. */
static void
body_test_feed(struct body *b, const char *in, size_t len, size_t feed,
               size_t out_cap, struct body_test_out *r)
{
    char piece[BODY_TEST_OUT];

    ck_assert_uint_le(out_cap, sizeof(piece));
    memset(r, 0, sizeof(*r));
    for (int guard = 0; guard < 1000000; guard++) {
        size_t n = len - r->used < feed ? len - r->used : feed;
        size_t used = 99999;
        char *copy;
        ssize_t got;

        if (body_is_done(b) || n == 0)
            break;
        copy = malloc(n);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, in + r->used, n);
        errno = 0;
        got = body_decode(b, copy, n, piece, out_cap, &used);
        free(copy);
        ck_assert_uint_le(used, n);
        if (got < 0) {
            r->rc = -1;
            r->err = errno;
            r->used += used;
            return;
        }
        ck_assert_uint_le((size_t)got, out_cap);
        ck_assert_uint_le(r->out_len + (size_t)got, sizeof(r->out));
        /* A call that uses nothing and writes nothing would loop. */
        ck_assert_msg(used > 0 || got > 0 || body_is_done(b),
                      "no progress at input byte %zu", r->used);
        memcpy(r->out + r->out_len, piece, (size_t)got);
        r->out_len += (size_t)got;
        r->used += used;
    }
    r->done = body_is_done(b);
}

/* Decode a whole chunked body (NUL-terminated text) all at once. */
static void
body_test_chunked(const char *in, size_t feed, size_t out_cap,
                  struct body_test_out *r)
{
    struct body b;

    body_init(&b, 1, 0, BODY_TEST_FRAMING);
    body_test_feed(&b, in, strlen(in), feed, out_cap, r);
}

static void
body_test_assert_out(const struct body_test_out *r, const char *want)
{
    ck_assert_msg(r->out_len == strlen(want) &&
                      memcmp(r->out, want, r->out_len) == 0,
                  "got \"%.*s\" (%zu bytes), expected \"%s\"", (int)r->out_len,
                  r->out, r->out_len, want);
}

/* A valid chunked body: all of it decoded to want, the body done, and
 * exactly body_len input bytes used, for several piece and buffer sizes. */
static void
body_test_valid(const char *in, size_t body_len, const char *want)
{
    static const size_t feeds[] = {1, 2, 3, 5, 7, 64, BODY_TEST_OUT};
    static const size_t caps[] = {1, 2, 3, 4, 13, BODY_TEST_OUT};
    struct body_test_out r;

    for (size_t i = 0; i < sizeof(feeds) / sizeof(feeds[0]); i++) {
        for (size_t j = 0; j < sizeof(caps) / sizeof(caps[0]); j++) {
            body_test_chunked(in, feeds[i], caps[j], &r);
            ck_assert_msg(r.rc == 0,
                          "\"%s\" feed %zu cap %zu: error %d at byte %zu", in,
                          feeds[i], caps[j], r.err, r.used);
            ck_assert_msg(r.done, "\"%s\" feed %zu cap %zu: not done", in,
                          feeds[i], caps[j]);
            ck_assert_msg(r.used == body_len,
                          "\"%s\" feed %zu cap %zu: used %zu, expected %zu", in,
                          feeds[i], caps[j], r.used, body_len);
            body_test_assert_out(&r, want);
        }
    }
}

/* A malformed chunked body: -1 with EPROTO, all at once and byte by byte,
 * before the end of the input. */
static void
body_test_bad_len(const char *in, size_t len, uint64_t framing_max)
{
    static const size_t feeds[] = {1, 2, 7, BODY_TEST_OUT};
    struct body_test_out r;
    struct body b;

    for (size_t i = 0; i < sizeof(feeds) / sizeof(feeds[0]); i++) {
        body_init(&b, 1, 0, framing_max);
        body_test_feed(&b, in, len, feeds[i], BODY_TEST_OUT, &r);
        ck_assert_msg(r.rc == -1, "\"%.*s\" (feed %zu) accepted%s", (int)len,
                      in, feeds[i], r.done ? "" : " as incomplete");
        ck_assert_msg(r.err == EPROTO, "\"%.*s\" (feed %zu): errno %d",
                      (int)len, in, feeds[i], r.err);
    }
}

static void
body_test_bad(const char *in)
{
    body_test_bad_len(in, strlen(in), BODY_TEST_FRAMING);
}

/* --- Content-Length ----------------------------------------------------- */

START_TEST(test_body_length_whole)
{
    static const char in[] = "0123456789GET /next HTTP/1.1\r\n";
    struct body_test_out r;
    struct body b;

    body_init(&b, 0, 10, BODY_TEST_FRAMING);
    ck_assert(!body_is_done(&b));
    body_test_feed(&b, in, strlen(in), BODY_TEST_OUT, BODY_TEST_OUT, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(r.done);
    ck_assert_uint_eq(r.used, 10); /* the next request is not touched */
    body_test_assert_out(&r, "0123456789");
}
END_TEST

START_TEST(test_body_length_pieces)
{
    static const char in[] = "The quick brown fox jumps over the lazy dog"
                             "POST / HTTP/1.1\r\n";
    const size_t body_len = 43;
    struct body_test_out r;
    struct body b;

    for (size_t feed = 1; feed <= 9; feed++) {
        for (size_t cap = 1; cap <= 6; cap++) {
            body_init(&b, 0, body_len, BODY_TEST_FRAMING);
            body_test_feed(&b, in, strlen(in), feed, cap, &r);
            ck_assert_int_eq(r.rc, 0);
            ck_assert_msg(r.done, "feed %zu cap %zu", feed, cap);
            ck_assert_uint_eq(r.used, body_len);
            ck_assert_uint_eq(r.out_len, body_len);
            ck_assert(memcmp(r.out, in, body_len) == 0);
        }
    }
}
END_TEST

/* Out full: the call stops there and says how much input it took; the
 * rest comes with the next call. */
START_TEST(test_body_length_small_out)
{
    static const char in[] = "abcdefghij";
    char out[4];
    size_t used = 99;
    struct body b;

    body_init(&b, 0, 10, BODY_TEST_FRAMING);
    ck_assert_int_eq(body_decode(&b, in, 10, out, 4, &used), 4);
    ck_assert_uint_eq(used, 4);
    ck_assert(memcmp(out, "abcd", 4) == 0);
    ck_assert(!body_is_done(&b));
    ck_assert_uint_eq(b.left, 6);
    ck_assert_int_eq(body_decode(&b, in + 4, 3, out, 4, &used), 3);
    ck_assert_uint_eq(used, 3);
    ck_assert(memcmp(out, "efg", 3) == 0);
    ck_assert_int_eq(body_decode(&b, in + 7, 3, out, 4, &used), 3);
    ck_assert_uint_eq(used, 3);
    ck_assert(body_is_done(&b));
    /* Done: nothing more is taken. */
    ck_assert_int_eq(body_decode(&b, "xyz", 3, out, 4, &used), 0);
    ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(test_body_length_zero)
{
    char out[8];
    size_t used = 99;
    struct body b;

    body_init(&b, 0, 0, BODY_TEST_FRAMING);
    ck_assert(body_is_done(&b));
    ck_assert_int_eq(body_decode(&b, "GET", 3, out, sizeof(out), &used), 0);
    ck_assert_uint_eq(used, 0);
}
END_TEST

/* Content-Length bytes are data, whatever they look like. */
START_TEST(test_body_length_no_framing)
{
    static const char in[] = "0\r\n\r\n5\r\nxyz";
    struct body_test_out r;
    struct body b;

    body_init(&b, 0, strlen(in), 0);
    body_test_feed(&b, in, strlen(in), 1, 1, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(r.done);
    body_test_assert_out(&r, in);
}
END_TEST

/* --- chunked: valid ----------------------------------------------------- */

START_TEST(test_body_chunked_simple)
{
    static const char body[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

    body_test_valid(body, strlen(body), "hello world");
}
END_TEST

START_TEST(test_body_chunked_empty)
{
    body_test_valid("0\r\n\r\n", 5, "");
}
END_TEST

START_TEST(test_body_chunked_hex_case)
{
    static const char body[] = "a\r\n0123456789\r\n"
                               "A\r\nABCDEFGHIJ\r\n"
                               "1f\r\n0123456789012345678901234567890\r\n"
                               "1F\r\nabcdefghijabcdefghijabcdefghija\r\n"
                               "0000A\r\nklmnopqrst\r\n"
                               "000\r\n\r\n";

    body_test_valid(body, strlen(body),
                    "0123456789ABCDEFGHIJ0123456789012345678901234567890"
                    "abcdefghijabcdefghijabcdefghijaklmnopqrst");
}
END_TEST

START_TEST(test_body_chunked_extensions)
{
    static const char a[] = "5;a=b\r\nhello\r\n0;last\r\n\r\n";
    static const char b[] = "5 ;a=b\r\nhello\r\n0\r\n\r\n";  /* BWS */
    static const char c[] = "5\t;a=b\r\nhello\r\n0\r\n\r\n"; /* BWS */
    static const char d[] = "5 \t ;a=b;c;d=\"x;y\"\r\nhello\r\n0\r\n\r\n";
    static const char e[] = "5; a = b\r\nhello\r\n0 ; z\r\n\r\n";
    /* quoted-pair, obs-text and BWS after a value */
    static const char f[] = "5;a=\"\\\"\\\\ \t\x80\xff\" ;b=c \t\r\nhello\r\n"
                            "0\r\n\r\n";

    body_test_valid(a, strlen(a), "hello");
    body_test_valid(b, strlen(b), "hello");
    body_test_valid(c, strlen(c), "hello");
    body_test_valid(d, strlen(d), "hello");
    body_test_valid(e, strlen(e), "hello");
    body_test_valid(f, strlen(f), "hello");
}
END_TEST

START_TEST(test_body_chunked_trailers)
{
    static const char a[] = "3\r\nabc\r\n0\r\nX-Sum: 123\r\n\r\n";
    static const char b[] = "3\r\nabc\r\n0\r\n"
                            "X-A: b\r\n"
                            "Empty:\r\n"
                            "Y:\tz z\t\r\n"
                            "!#$%&'*+-.^_`|~09azAZ: v\x80\xff\r\n"
                            "\r\n";

    body_test_valid(a, strlen(a), "abc");
    body_test_valid(b, strlen(b), "abc");
}
END_TEST

/* Chunk data is data even when it looks like framing. */
START_TEST(test_body_chunked_data_like_framing)
{
    static const char body[] = "7\r\n0\r\n\r\n\r\n\r\n2\r\n\r\n\r\n0\r\n\r\n";

    body_test_valid(body, strlen(body), "0\r\n\r\n\r\n\r\n");
}
END_TEST

/* The body ends at the LF of its last line: bytes of the next (pipelined)
 * request are left for the caller, however they arrive. */
START_TEST(test_body_chunked_end_exact)
{
    static const char body[] = "4\r\nwiki\r\n0\r\nT: v\r\n\r\n";
    char in[256], out[64];
    size_t used = 99;
    struct body b;

    snprintf(in, sizeof(in), "%sGET /next HTTP/1.1\r\n\r\n", body);
    body_test_valid(in, strlen(body), "wiki");
    /* Once done, further calls take nothing. */
    body_init(&b, 1, 0, BODY_TEST_FRAMING);
    ck_assert_int_eq(body_decode(&b, in, strlen(in), out, sizeof(out), &used),
                     4);
    ck_assert_uint_eq(used, strlen(body));
    ck_assert(body_is_done(&b));
    ck_assert_int_eq(
        body_decode(&b, in + used, strlen(in) - used, out, sizeof(out), &used),
        0);
    ck_assert_uint_eq(used, 0);
}
END_TEST

/* Not yet done: all input used, no error. */
START_TEST(test_body_chunked_incomplete)
{
    static const char *const parts[] = {
        "",
        "5",
        "5;",
        "5;a=b",
        "5\r",
        "5\r\n",
        "5\r\nhel",
        "5\r\nhello",
        "5\r\nhello\r",
        "5\r\nhello\r\n0",
        "5\r\nhello\r\n0\r\n",
        "5\r\nhello\r\n0\r\nX: y",
        "5\r\nhello\r\n0\r\nX: y\r\n",
        "5\r\nhello\r\n0\r\n\r",
    };
    struct body_test_out r;

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        body_test_chunked(parts[i], 1, 16, &r);
        ck_assert_msg(r.rc == 0, "\"%s\": error", parts[i]);
        ck_assert_msg(!r.done, "\"%s\": done", parts[i]);
        ck_assert_uint_eq(r.used, strlen(parts[i]));
    }
}
END_TEST

/* 15 hex digits are allowed (2^60 - 1 bytes, no overflow). */
START_TEST(test_body_chunked_15_digits)
{
    static const char a[] = "000000000000005\r\nhello\r\n0\r\n\r\n";
    static const char big[] = "fffffffffffffff\r\nabc";
    struct body_test_out r;
    struct body b;

    body_test_valid(a, strlen(a), "hello");
    body_init(&b, 1, 0, BODY_TEST_FRAMING);
    body_test_feed(&b, big, strlen(big), 4, 4, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(!r.done);
    ck_assert_uint_eq(r.used, strlen(big));
    body_test_assert_out(&r, "abc");
    ck_assert_uint_eq(b.left, UINT64_C(0xfffffffffffffff) - 3);
}
END_TEST

/* Byte by byte with a one-byte buffer: the same body and the same end as
 * all at once. */
START_TEST(test_body_chunked_bytewise_same)
{
    static const char *const bodies[] = {
        "1\r\na\r\n0\r\n\r\n",
        "5;a=b\r\nhello\r\n6 ; x\r\n world\r\n0\r\nA: b\r\nC: d\r\n\r\n",
        "10\r\n0123456789abcdef\r\n1\r\n\n\r\n0\r\n\r\n",
        "0\r\n\r\n",
    };
    struct body_test_out whole, bytes;
    char in[512];

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        snprintf(in, sizeof(in), "%sPUT / HTTP/1.1\r\n", bodies[i]);
        body_test_chunked(in, BODY_TEST_OUT, BODY_TEST_OUT, &whole);
        body_test_chunked(in, 1, 1, &bytes);
        ck_assert_int_eq(whole.rc, 0);
        ck_assert_int_eq(bytes.rc, 0);
        ck_assert(whole.done && bytes.done);
        ck_assert_uint_eq(whole.used, strlen(bodies[i]));
        ck_assert_uint_eq(bytes.used, whole.used);
        ck_assert_uint_eq(bytes.out_len, whole.out_len);
        ck_assert(memcmp(bytes.out, whole.out, whole.out_len) == 0);
    }
}
END_TEST

/* --- chunked: malformed ------------------------------------------------- */

START_TEST(test_body_chunked_bad_data_end)
{
    body_test_bad("5\r\nhelloX\r\n0\r\n\r\n"); /* no CRLF after data */
    body_test_bad("5\r\nhello0\r\n\r\n");
    body_test_bad("5\r\nhello\n0\r\n\r\n"); /* bare LF */
    body_test_bad("5\r\nhello\r0\r\n\r\n"); /* bare CR */
    body_test_bad("5\r\nhello\r\r\n0\r\n\r\n");
    body_test_bad("5\r\nhello world\r\n0\r\n\r\n"); /* longer than said */
}
END_TEST

START_TEST(test_body_chunked_bad_size_line_end)
{
    body_test_bad("5\nhello\r\n0\r\n\r\n");     /* bare LF after size */
    body_test_bad("5\rhello\r\n0\r\n\r\n");     /* bare CR */
    body_test_bad("5\r\r\nhello\r\n0\r\n\r\n"); /* CR CR LF */
    body_test_bad("5 \r\nhello\r\n0\r\n\r\n");  /* BWS without ';' */
    body_test_bad("5\t\r\nhello\r\n0\r\n\r\n");
    body_test_bad("5;a\nhello\r\n0\r\n\r\n"); /* bare LF after extension */
    body_test_bad("5;a\rhello\r\n0\r\n\r\n");
    body_test_bad("0\n\r\n");
    body_test_bad("0 \r\n\r\n");
}
END_TEST

START_TEST(test_body_chunked_bad_size)
{
    body_test_bad("\r\nhello\r\n0\r\n\r\n"); /* empty size line */
    body_test_bad(";a=b\r\nhello\r\n0\r\n\r\n");
    body_test_bad(" 5\r\nhello\r\n0\r\n\r\n");
    body_test_bad("-5\r\nhello\r\n0\r\n\r\n");
    body_test_bad("+5\r\nhello\r\n0\r\n\r\n");
    body_test_bad("0x5\r\nhello\r\n0\r\n\r\n");
    body_test_bad("5g\r\nhello\r\n0\r\n\r\n");
    body_test_bad("5 5\r\nhello\r\n0\r\n\r\n");
    body_test_bad("1000000000000000\r\n"); /* 16 digits */
    body_test_bad("0000000000000005\r\nhello\r\n0\r\n\r\n");
    body_test_bad("ffffffffffffffffff\r\n");
    body_test_bad("5\r\nhello\r\n\r\n"); /* no last chunk */
}
END_TEST

START_TEST(test_body_chunked_bad_extension)
{
    static const char nul[] = "5;a\0b\r\nhello\r\n0\r\n\r\n";

    body_test_bad("5;a\x01\r\nhello\r\n0\r\n\r\n");
    body_test_bad("5;a\x7f\r\nhello\r\n0\r\n\r\n");
    body_test_bad_len(nul, sizeof(nul) - 1, BODY_TEST_FRAMING);
    /* RFC 9112 7.1.1: chunk-ext-name = token, chunk-ext-val = token /
     * quoted-string. */
    body_test_bad("5;\r\nhello\r\n0\r\n\r\n");              /* bare ";" */
    body_test_bad("5;a;\r\nhello\r\n0\r\n\r\n");            /* trailing ";" */
    body_test_bad("5; ;a\r\nhello\r\n0\r\n\r\n");           /* empty name */
    body_test_bad("5;a@b\r\nhello\r\n0\r\n\r\n");           /* not a token */
    body_test_bad("5;a=\r\nhello\r\n0\r\n\r\n");            /* no value */
    body_test_bad("5;=b\r\nhello\r\n0\r\n\r\n");            /* no name */
    body_test_bad("5;a=b c\r\nhello\r\n0\r\n\r\n");         /* two tokens */
    body_test_bad("5;a=b=c\r\nhello\r\n0\r\n\r\n");         /* "=" in a token */
    body_test_bad("5;a=\"b\r\nhello\r\n0\r\n\r\n");         /* unterminated */
    body_test_bad("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n");      /* after quotes */
    body_test_bad("5;a=\"b\x01\"\r\nhello\r\n0\r\n\r\n");   /* control */
    body_test_bad("5;a=\"b\\\x01\"\r\nhello\r\n0\r\n\r\n"); /* pair */
    body_test_bad("5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n");    /* DEL */
    body_test_bad("5;a b\r\nhello\r\n0\r\n\r\n");           /* name, name */
}
END_TEST

START_TEST(test_body_chunked_bad_trailer)
{
    static const char nul_name[] = "0\r\nX\0: a\r\n\r\n";
    static const char nul_value[] = "0\r\nX: a\0b\r\n\r\n";

    body_test_bad("0\r\nFoo\r\n\r\n");         /* no colon */
    body_test_bad("0\r\nFoo bar\r\n\r\n");     /* no colon */
    body_test_bad("0\r\nX: a\r\n b\r\n\r\n");  /* obs-fold */
    body_test_bad("0\r\nX: a\r\n\tb\r\n\r\n"); /* obs-fold */
    body_test_bad("0\r\n X: a\r\n\r\n");       /* starts with space */
    body_test_bad("0\r\nX : a\r\n\r\n");       /* space before colon */
    body_test_bad("0\r\nX\t: a\r\n\r\n");      /* tab before colon */
    body_test_bad("0\r\n: a\r\n\r\n");         /* empty name */
    body_test_bad("0\r\nX(: a\r\n\r\n");       /* not a token */
    body_test_bad("0\r\nX: a\nY: b\r\n\r\n");  /* bare LF */
    body_test_bad("0\r\nX: a\rY: b\r\n\r\n");  /* bare CR */
    body_test_bad("0\r\nX: a\x01\r\n\r\n");    /* control byte */
    body_test_bad("0\r\nX: a\x7f\r\n\r\n");    /* DEL */
    body_test_bad("0\r\n\n");                  /* bare LF at the end */
    body_test_bad("0\r\n\rX");                 /* bare CR at the end */
    body_test_bad("0\r\nX: a\r\n\n");          /* bare LF at the end */
    body_test_bad_len(nul_name, sizeof(nul_name) - 1, BODY_TEST_FRAMING);
    body_test_bad_len(nul_value, sizeof(nul_value) - 1, BODY_TEST_FRAMING);
}
END_TEST

/* framing_max counts the bytes that carry no data and need not be there:
 * extensions after the ';' (with their CR), BWS, and trailer lines (with
 * their CRLF).  Size digits and CRLFs are free: every chunk but the last
 * carries data (issue 11: 7,000 one-byte chunks got 400). */
START_TEST(test_body_chunked_framing_max)
{
    static const char a[] = "5\r\nhello\r\n0\r\n\r\n"; /* 0 counted */
    static const char t[] = "0\r\nX: y\r\n\r\n";       /* 4+2 = 6 */
    static const char e[] = "1;x=y\r\na\r\n0\r\n\r\n"; /* 3+1 = 4 */
    char ext[1100], *many = malloc(7000 * 6 + 8);
    struct body_test_out r;
    struct body b;

    body_init(&b, 1, 0, 0);
    body_test_feed(&b, a, strlen(a), 1, 1, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(r.done);
    body_test_assert_out(&r, "hello");

    body_init(&b, 1, 0, 6);
    body_test_feed(&b, t, strlen(t), BODY_TEST_OUT, BODY_TEST_OUT, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(r.done);
    body_test_bad_len(t, strlen(t), 5);

    body_init(&b, 1, 0, 4);
    body_test_feed(&b, e, strlen(e), BODY_TEST_OUT, BODY_TEST_OUT, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(r.done);
    body_test_bad_len(e, strlen(e), 3);

    /* 7,000 one-byte chunks: no framing counted at all. */
    ck_assert_ptr_nonnull(many);
    size_t k = 0;
    for (int i = 0; i < 7000; i++)
        k += (size_t)sprintf(many + k, "1\r\nx\r\n");
    k += (size_t)sprintf(many + k, "0\r\n\r\n");
    char *out = malloc(8000);
    size_t used;
    body_init(&b, 1, 0, 0);
    ck_assert_int_eq(body_decode(&b, many, k, out, 8000, &used), 7000);
    ck_assert_uint_eq(used, k);
    ck_assert(body_is_done(&b));
    free(out);
    free(many);

    /* A long extension is refused once it passes the limit, not at its
     * end: a client cannot hold a worker with an endless size line. */
    memset(ext, 'a', sizeof(ext));
    memcpy(ext, "1;", 2);
    body_init(&b, 1, 0, 100);
    body_test_feed(&b, ext, sizeof(ext), 7, 16, &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.err, EPROTO);
    ck_assert_uint_eq(r.used, 103); /* "1;" and 101 counted bytes */
}
END_TEST

static Suite *
body_suite(void)
{
    Suite *s = suite_create("body");
    TCase *length = tcase_create("length");
    TCase *chunked = tcase_create("chunked");
    TCase *bad = tcase_create("malformed");

    tcase_add_test(length, test_body_length_whole);
    tcase_add_test(length, test_body_length_pieces);
    tcase_add_test(length, test_body_length_small_out);
    tcase_add_test(length, test_body_length_zero);
    tcase_add_test(length, test_body_length_no_framing);
    suite_add_tcase(s, length);

    tcase_add_test(chunked, test_body_chunked_simple);
    tcase_add_test(chunked, test_body_chunked_empty);
    tcase_add_test(chunked, test_body_chunked_hex_case);
    tcase_add_test(chunked, test_body_chunked_extensions);
    tcase_add_test(chunked, test_body_chunked_trailers);
    tcase_add_test(chunked, test_body_chunked_data_like_framing);
    tcase_add_test(chunked, test_body_chunked_end_exact);
    tcase_add_test(chunked, test_body_chunked_incomplete);
    tcase_add_test(chunked, test_body_chunked_15_digits);
    tcase_add_test(chunked, test_body_chunked_bytewise_same);
    suite_add_tcase(s, chunked);

    tcase_add_test(bad, test_body_chunked_bad_data_end);
    tcase_add_test(bad, test_body_chunked_bad_size_line_end);
    tcase_add_test(bad, test_body_chunked_bad_size);
    tcase_add_test(bad, test_body_chunked_bad_extension);
    tcase_add_test(bad, test_body_chunked_bad_trailer);
    tcase_add_test(bad, test_body_chunked_framing_max);
    suite_add_tcase(s, bad);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(body_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
