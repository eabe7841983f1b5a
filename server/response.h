/* response: the status line, headers and body framing of a response, the
 * handler's start_response/write/sendfile, error pages and the Date cache.
 * The only module that writes HTTP framing. */
#ifndef FORKD_RESPONSE_H
#define FORKD_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct forkd_req;
struct conn;

#define RESPONSE_BODY_BUF 16384

struct response {
    int status;         /* 0 until start_response */
    const char *reason; /* arena copy of the whole status, "200 OK" */
    char *fields;       /* "Name: value\r\n"..., arena */
    size_t fields_len;
    int has_length; /* the handler gave Content-Length */
    uint64_t length;
    int has_date, has_server;
    int failed; /* the handler broke the protocol: 500 or close */
    int head_sent;
    int chunked;
    int no_body;         /* HEAD, 204, 304 */
    uint64_t body_count; /* body bytes the handler gave */
    uint64_t bytes_out;  /* bytes written to the client, for the access log */
    char *body;          /* buffered body: the worker's buffer, not owned */
    size_t body_len;
};

/* Reset r for a new request; body_buf has RESPONSE_BODY_BUF bytes. */
void response_init(struct response *r, char *body_buf);

/* Check a status ("200 OK": three digits 200..599, SP, reason of VCHAR,
 * SP or HTAB).  Returns the code or -1. */
int response_parse_status(const char *status);

/* Check one handler header: a token name, a value without CR, LF, NUL or
 * other controls, and not hop-by-hop.  Returns 0 or -1. */
int response_check_header(const char *name, const char *value);

/* Finish the request after the handler returned rc (0 or -1): send what is
 * buffered with its framing, the last chunk, or a 500 page.  Returns 0 if
 * the connection may be kept alive, -1 if it must be closed. */
int response_finish(struct forkd_req *req, int rc);

/* A complete error page for status that asks to close, in buf (at least
 * RESPONSE_ERROR_MAX bytes).  head_only for HEAD.  Returns its length. */
#define RESPONSE_ERROR_MAX 512
size_t response_format_error(char *buf, int status, int head_only);

/* Send that page on c, waiting up to send_timeout_s (a handler's thread
 * only: the poller never blocks).  Returns bytes written or -1. */
ssize_t response_send_error(struct conn *c, int status, int head_only,
                            unsigned send_timeout_s);

/* The reason phrase of a status the server itself sends. */
const char *response_reason(int status);

/* The cached IMF-fixdate of now ("Sun, 06 Nov 1994 08:49:37 GMT"),
 * refreshed at most once a second. */
const char *response_date(void);

#endif
