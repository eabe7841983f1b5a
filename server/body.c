#include "body.h"

#include <errno.h>
#include <string.h>

#include "http.h"

/* 15 hex digits: a chunk of up to 2^60 bytes, which no limit reaches,
 * and no overflow of the 64-bit count. */
#define BODY_MAX_DIGITS 15

void
body_init(struct body *b, int chunked, uint64_t length, uint64_t framing_max)
{
    memset(b, 0, sizeof(*b));
    b->framing_max = framing_max;
    if (chunked)
        b->state = BODY_SIZE;
    else if (length > 0) {
        b->state = BODY_LENGTH;
        b->left = length;
    } else {
        b->state = BODY_DONE;
    }
}

static int
body_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* After an extension's name or value: another one, or the end of the
 * size line. */
static int
body_ext_next(struct body *b, unsigned char c)
{
    if (c == ';')
        b->state = BODY_EXT_NAME0;
    else if (c == '\r')
        b->state = BODY_SIZE_LF;
    else
        return -1;
    return 0;
}

/* One byte of chunk extensions, after the first ';' (RFC 9112 7.1.1):
 *   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token, chunk-ext-val = token / quoted-string
 * Anything else fails the body: a proxy that reads the line otherwise
 * must not find a different end of it. */
static int
body_ext_byte(struct body *b, unsigned char c)
{
    int ws = c == ' ' || c == '\t', tchar = http_is_tchar(c);

    switch (b->state) {
    case BODY_EXT_NAME0: /* BWS, then the name */
        if (tchar)
            b->state = BODY_EXT_NAME;
        return ws || tchar ? 0 : -1;
    case BODY_EXT_NAME:
    case BODY_EXT_TOKEN:
        if (tchar)
            return 0;
        if (ws)
            b->state = b->state == BODY_EXT_NAME ? BODY_EXT_NAME_WS
                                                 : BODY_EXT_VALUE_WS;
        else if (c == '=' && b->state == BODY_EXT_NAME)
            b->state = BODY_EXT_VALUE0;
        else
            return body_ext_next(b, c);
        return 0;
    case BODY_EXT_NAME_WS: /* BWS after the name: "=", ";" or the end */
        if (ws)
            return 0;
        if (c == '=') {
            b->state = BODY_EXT_VALUE0;
            return 0;
        }
        return body_ext_next(b, c);
    case BODY_EXT_VALUE0: /* BWS, then a token or a quoted-string */
        if (c == '"')
            b->state = BODY_EXT_QUOTED;
        else if (tchar)
            b->state = BODY_EXT_TOKEN;
        return ws || tchar || c == '"' ? 0 : -1;
    case BODY_EXT_QUOTED: /* qdtext, or the closing quote */
        if (c == '"')
            b->state = BODY_EXT_VALUE_WS;
        else if (c == '\\')
            b->state = BODY_EXT_ESCAPE;
        else if (!ws && (c < 0x21 || c == 0x7f))
            return -1;
        return 0;
    case BODY_EXT_ESCAPE: /* quoted-pair: HTAB, SP, VCHAR or obs-text */
        if (!ws && (c < 0x21 || c == 0x7f))
            return -1;
        b->state = BODY_EXT_QUOTED;
        return 0;
    default: /* BODY_EXT_VALUE_WS: BWS after a value */
        return ws ? 0 : body_ext_next(b, c);
    }
}

/* One byte of a size line. */
static int
body_size_byte(struct body *b, unsigned char c)
{
    int v = body_hex(c);

    switch (b->state) {
    case BODY_SIZE:
        if (v >= 0 && b->digits < BODY_MAX_DIGITS) {
            b->left = b->left * 16 + (unsigned)v;
            b->digits++;
            return 0;
        }
        if (b->digits == 0 || v >= 0)
            return -1; /* no digits, or too many */
        /* the first byte after the digits */
        /* fall through */
    case BODY_SIZE_WS:
        if (c == ' ' || c == '\t')
            b->state = BODY_SIZE_WS;
        else if (c == ';')
            b->state = BODY_EXT_NAME0;
        else if (c == '\r' && b->state == BODY_SIZE)
            b->state = BODY_SIZE_LF;
        else
            return -1;
        return 0;
    case BODY_SIZE_LF:
        if (c != '\n')
            return -1;
        b->state = b->left ? BODY_DATA : BODY_TRAILER;
        return 0;
    default:
        return body_ext_byte(b, c);
    }
}

/* One byte of the trailer section: field lines as in a head, then CRLF. */
static int
body_trailer_byte(struct body *b, unsigned char c)
{
    switch (b->state) {
    case BODY_TRAILER:
        if (c == '\r') {
            b->state = b->line_len ? BODY_TRAILER_LF : BODY_END_LF;
        } else if (b->in_value) {
            if (c != '\t' && (c < 0x20 || c == 0x7f))
                return -1;
        } else if (c == ':' && b->line_len > 0) {
            b->in_value = 1;
        } else if (!http_is_tchar(c)) {
            return -1; /* obs-fold, space before the colon, bare LF... */
        }
        b->line_len++;
        return 0;
    case BODY_TRAILER_LF:
        if (c != '\n' || !b->in_value)
            return -1;
        b->state = BODY_TRAILER;
        b->line_len = 0;
        b->in_value = 0;
        return 0;
    default: /* BODY_END_LF */
        if (c != '\n')
            return -1;
        b->state = BODY_DONE;
        return 0;
    }
}

/* Whether framing byte c counts against framing_max: the bytes of
 * extensions after the ';' (with their CR), of BWS, and of trailer lines
 * (with their CRLF). */
static int
body_is_counted(const struct body *b, unsigned char c)
{
    switch (b->state) {
    case BODY_SIZE_WS:
    case BODY_EXT_NAME0:
    case BODY_EXT_NAME:
    case BODY_EXT_NAME_WS:
    case BODY_EXT_VALUE0:
    case BODY_EXT_TOKEN:
    case BODY_EXT_QUOTED:
    case BODY_EXT_ESCAPE:
    case BODY_EXT_VALUE_WS:
    case BODY_TRAILER_LF:
        return 1;
    case BODY_TRAILER:
        return c != '\r' || b->line_len > 0;
    default:
        return 0;
    }
}

/* One byte of framing (anything but data). */
static int
body_framing_byte(struct body *b, unsigned char c)
{
    /* Extensions, the whitespace before them and trailers carry no data,
     * so they alone are bounded (by framing_max).  Size digits (at most
     * BODY_MAX_DIGITS) and CRLFs are not counted: every chunk but the last
     * carries at least one data byte, which the body limit counts, so a
     * body of many small chunks is as legitimate as one big chunk. */
    if (body_is_counted(b, c) && ++b->framing > b->framing_max)
        return -1;
    switch (b->state) {
    case BODY_DATA_CR:
        if (c != '\r')
            return -1; /* the state stays: a failed body never moves on */
        b->state = BODY_DATA_LF;
        return 0;
    case BODY_DATA_LF:
        if (c != '\n')
            return -1;
        b->state = BODY_SIZE;
        b->left = 0;
        b->digits = 0;
        return 0;
    case BODY_TRAILER:
    case BODY_TRAILER_LF:
    case BODY_END_LF:
        return body_trailer_byte(b, c);
    default:
        return body_size_byte(b, c);
    }
}

ssize_t
body_decode(struct body *b, const char *in, size_t in_len, char *out,
            size_t out_cap, size_t *used)
{
    size_t i = 0, n = 0;

    while (i < in_len && b->state != BODY_DONE) {
        if (b->state == BODY_LENGTH || b->state == BODY_DATA) {
            size_t k = in_len - i;
            if (k > out_cap - n)
                k = out_cap - n;
            if (k > b->left)
                k = (size_t)b->left;
            if (k == 0)
                break; /* out is full */
            memcpy(out + n, in + i, k);
            i += k;
            n += k;
            b->left -= k;
            if (b->left == 0)
                b->state = b->state == BODY_LENGTH ? BODY_DONE : BODY_DATA_CR;
            continue;
        }
        if (body_framing_byte(b, (unsigned char)in[i++]) < 0) {
            *used = i;
            errno = EPROTO;
            return -1;
        }
    }
    *used = i;
    return (ssize_t)n;
}
