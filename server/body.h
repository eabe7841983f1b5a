/* body: the request body after its head: Content-Length bytes counted, or
 * chunked coding decoded to the letter of RFC 9112 7.1 (CRLF after every
 * size line and every chunk, extensions bounded and checked against the
 * 7.1.1 grammar, trailer lines checked as header lines), so that no two parsers
 * can disagree on where it ends. Never logs. */
#ifndef FORKD_BODY_H
#define FORKD_BODY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum body_state {
    BODY_LENGTH,       /* Content-Length bytes left */
    BODY_SIZE,         /* chunk-size hex digits */
    BODY_SIZE_WS,      /* BWS after the size, before ';' */
    BODY_EXT_NAME0,    /* after ';': BWS, then a chunk-ext-name */
    BODY_EXT_NAME,     /* in the name */
    BODY_EXT_NAME_WS,  /* BWS after the name */
    BODY_EXT_VALUE0,   /* after '=': BWS, then a token or quoted-string */
    BODY_EXT_TOKEN,    /* in a token value */
    BODY_EXT_QUOTED,   /* in a quoted-string value */
    BODY_EXT_ESCAPE,   /* after a backslash in it */
    BODY_EXT_VALUE_WS, /* BWS after a value */
    BODY_SIZE_LF,      /* the LF of the size line */
    BODY_DATA,         /* chunk data */
    BODY_DATA_CR,      /* the CRLF after chunk data */
    BODY_DATA_LF,
    BODY_TRAILER,    /* a trailer field line, or the final CRLF */
    BODY_TRAILER_LF, /* the LF of a trailer line */
    BODY_END_LF,     /* the LF of the final empty line */
    BODY_DONE
};

struct body {
    enum body_state state;
    uint64_t left;    /* bytes of Content-Length or of the chunk */
    unsigned digits;  /* of the chunk size being read */
    size_t line_len;  /* of the trailer line being read */
    int in_value;     /* past the trailer line's colon */
    uint64_t framing; /* extension and trailer bytes so far */
    uint64_t framing_max;
};

/* Start a body: chunked, or length bytes (0: no body at all).
 * framing_max bounds the bytes of chunk extensions (with the whitespace
 * before them) and trailers; size digits and CRLFs are not counted. */
void body_init(struct body *b, int chunked, uint64_t length,
               uint64_t framing_max);

static inline int
body_is_done(const struct body *b)
{
    return b->state == BODY_DONE;
}

/* Decode in[0..in_len) into out[0..out_cap): stores the input bytes used
 * in *used (never past the end of the body) and returns the body bytes
 * written, or -1 (EPROTO) on bad framing. */
ssize_t body_decode(struct body *b, const char *in, size_t in_len, char *out,
                    size_t out_cap, size_t *used);

#endif
