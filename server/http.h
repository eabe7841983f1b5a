/* http: the request head (found, checked to RFC 9112 and parsed in place)
 * and the request body (de-chunked), around nodejs http-parser.  Debian
 * builds http-parser non-strict, so the rules it lets through (bare LF,
 * obs-fold, space before the colon, odd versions, 8-bit targets, ...) are
 * enforced here before it sees the bytes.  Never logs. */
#ifndef FORKD_HTTP_H
#define FORKD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "body.h"

struct http_limits {
    size_t line;       /* request line bytes (414) */
    size_t fields;     /* header fields (431) */
    size_t field_size; /* one field line (431) */
    size_t head;       /* whole head (431) */
    uint64_t body;     /* body bytes, 0: unlimited (413) */
};

/* Where the search for the end of a head stands; zero it per request. */
struct http_scan {
    size_t pos;        /* bytes already checked */
    size_t line_start; /* start of the line being read */
    size_t fields;     /* header lines seen */
    int in_fields;     /* past the request line */
};

enum http_scan_result { HTTP_SCAN_MORE, HTTP_SCAN_DONE, HTTP_SCAN_ERROR };

/* Check buf[s->pos..len) for the end of the head (CRLF CRLF).  DONE stores
 * the head's length in *head_len; ERROR stores 400 (bare CR or LF, NUL),
 * 414 or 431 in *status.  Bytes are checked once however they arrive. */
enum http_scan_result http_scan_head(struct http_scan *s, const char *buf,
                                     size_t len, const struct http_limits *lim,
                                     size_t *head_len, int *status);

struct http_header {
    const char *name; /* in the head buffer, not NUL-terminated */
    size_t name_len;
    const char *value; /* NUL-terminated in place, OWS trimmed */
    size_t value_len;
};

struct http_head {
    const char *method; /* NUL-terminated in place */
    const char *target; /* raw request-target, NUL-terminated */
    const char *path;   /* origin-form path, not terminated */
    size_t path_len;
    const char *query;    /* after '?', or "" */
    const char *protocol; /* "HTTP/1.0" or "HTTP/1.1" */
    const char *host;     /* from an absolute-form target or Host, or NULL */
    int host_from_target; /* absolute-form: Host is ignored (RFC 9112 3.2.2) */
    size_t host_len;
    const char *content_type;    /* or NULL */
    const char *content_length;  /* digits, or NULL */
    struct http_header *headers; /* caller's array of lim->fields */
    size_t n_headers;
    unsigned minor;      /* 0 or 1 */
    int keep_alive;      /* the client allows keep-alive */
    int expect_continue; /* Expect: 100-continue */
    int chunked;
    uint64_t body_length; /* Content-Length, or 0 */
    int body_done;        /* the whole body has been decoded */
    uint64_t body_read;   /* de-chunked bytes delivered */
    uint64_t body_raw;    /* raw body bytes decoded */
    struct body body;
};

/* Parse and check the head buf[0..head_len) (as found by http_scan_head),
 * writing NULs into it; headers must hold lim->fields entries.  Returns 0,
 * or the status to answer with (400, 413, 417, 501, 505). */
int http_parse_head(struct http_head *h, char *buf, size_t head_len,
                    struct http_header *headers, const struct http_limits *lim);

/* Decode raw body bytes in[0..in_len) into out[0..out_cap).  Stores the raw
 * bytes used in *used and returns the body bytes produced; stops at the end
 * of the body (h->body_done).  Returns -1 on a malformed body (EPROTO) or
 * one over lim->body (EFBIG). */
ssize_t http_body_read(struct http_head *h, const char *in, size_t in_len,
                       char *out, size_t out_cap, size_t *used,
                       const struct http_limits *lim);

/* Whether c may appear in a token (RFC 9110 5.6.2). */
int http_is_tchar(unsigned char c);

/* Case-insensitive comparison of a header name with a NUL-terminated one. */
int http_name_is(const struct http_header *hd, const char *name);

#endif
