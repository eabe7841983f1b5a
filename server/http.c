#include "http.h"

#include <http_parser.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum http_scan_result
http_scan_head(struct http_scan *s, const char *buf, size_t len,
               const struct http_limits *lim, size_t *head_len, int *status)
{
    for (size_t i = s->pos; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        size_t line_len = i - s->line_start;

        if (c == '\0' || (i > 0 && buf[i - 1] == '\r' && c != '\n') ||
            (c == '\n' && (i == 0 || buf[i - 1] != '\r'))) {
            *status = 400; /* NUL, bare CR or bare LF (RFC 9112 2.2) */
            return HTTP_SCAN_ERROR;
        }
        if (!s->in_fields && line_len > lim->line + 1) {
            /* 414 is for a long target; a method that long is just bad. */
            *status = memchr(buf + s->line_start, ' ', line_len) ? 414 : 400;
            return HTTP_SCAN_ERROR;
        }
        if (i + 1 > lim->head ||
            (s->in_fields && line_len > lim->field_size + 1)) {
            *status = 431;
            return HTTP_SCAN_ERROR;
        }
        if (c != '\n')
            continue;
        if (s->in_fields && line_len == 1) {
            *head_len = i + 1;
            s->pos = i + 1;
            return HTTP_SCAN_DONE;
        }
        if (s->in_fields && ++s->fields > lim->fields) {
            *status = 431;
            return HTTP_SCAN_ERROR;
        }
        s->in_fields = 1;
        s->line_start = i + 1;
    }
    s->pos = len;
    return HTTP_SCAN_MORE;
}

/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA  (a table: this runs
 * for every byte of every field name) */
static const unsigned char http_tchars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int
http_is_tchar(unsigned char c)
{
    return http_tchars[c];
}

int
http_name_is(const struct http_header *hd, const char *name)
{
    return strlen(name) == hd->name_len &&
           strncasecmp(hd->name, name, hd->name_len) == 0;
}

/* field-vchar or SP/HTAB: VCHAR, obs-text; no CTL, no DEL. */
static int
http_is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Split one "name: value" line (without its CRLF) and check it. */
static int
http_parse_field(char *line, size_t len, struct http_header *hd)
{
    size_t i = 0, end;

    while (i < len && http_is_tchar((unsigned char)line[i]))
        i++;
    /* No name, obs-fold, or whitespace before the colon (RFC 9112 5.1). */
    if (i == 0 || i >= len || line[i] != ':')
        return 400;
    hd->name = line;
    hd->name_len = i;
    for (i++; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
        ;
    for (end = len; end > i && (line[end - 1] == ' ' || line[end - 1] == '\t');
         end--)
        ;
    for (size_t j = i; j < end; j++)
        if (!http_is_value_char((unsigned char)line[j]))
            return 400;
    line[end] = '\0';
    hd->value = line + i;
    hd->value_len = end - i;
    return 0;
}

static int
http_is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* method SP request-target SP HTTP-version, single spaces (RFC 9112 3). */
static int
http_parse_line(struct http_head *h, char *line, size_t len)
{
    char *sp1, *sp2;
    size_t i;

    for (i = 0; i < len && http_is_tchar((unsigned char)line[i]); i++)
        ;
    if (i == 0 || i >= len || line[i] != ' ')
        return 400;
    sp1 = line + i;
    for (i++; i < len && http_is_target_char((unsigned char)line[i]); i++)
        ;
    if (i == (size_t)(sp1 - line) + 1 || i >= len || line[i] != ' ')
        return 400;
    sp2 = line + i;
    *sp1 = '\0';
    *sp2 = '\0';
    h->method = line;
    h->target = sp1 + 1;
    h->protocol = sp2 + 1;
    line[len] = '\0';
    if (strcmp(h->protocol, "HTTP/1.1") == 0 ||
        strcmp(h->protocol, "HTTP/1.0") == 0) {
        h->minor = (unsigned)(h->protocol[7] - '0');
        return 0;
    }
    if (len - (size_t)(h->protocol - line) == 8 &&
        strncmp(h->protocol, "HTTP/", 5) == 0 && h->protocol[5] >= '0' &&
        h->protocol[5] <= '9' && h->protocol[6] == '.' &&
        h->protocol[7] >= '0' && h->protocol[7] <= '9')
        return 505;
    return 400;
}

/* Host = uri-host [ ":" port ]: reg-name, IPv4 or [IP-literal]. */
/* reg-name characters: unreserved, pct-encoded and sub-delims. */
static int
http_is_regname_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("-._~%!$&'()*+,;=", c));
}

/* uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name or IPv4
 * address, or an IP-literal in brackets; the port is digits. */
static int
http_is_host(const char *s, size_t len)
{
    size_t i = 0;

    if (len > 0 && s[0] == '[') {
        for (i = 1; i < len && s[i] != ']'; i++)
            if (!(isxdigit((unsigned char)s[i]) || s[i] == ':' || s[i] == '.' ||
                  s[i] == 'v' || s[i] == 'V'))
                return 0;
        if (i == len || i == 1)
            return 0; /* unclosed or empty literal */
        i++;
    } else {
        while (i < len && http_is_regname_char((unsigned char)s[i])) {
            if (s[i] == '%' &&
                (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                 !isxdigit((unsigned char)s[i + 2])))
                return 0; /* pct-encoded = "%" HEXDIG HEXDIG */
            i++;
        }
    }
    if (i < len && s[i] == ':')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            ;
    return i == len;
}

/* pchar, "/" and "?" (RFC 3986 3.3, 3.4): what a path and query may hold;
 * "#", spaces, quotes, <>, \, ^, `, {, | and } must be percent-encoded. */
static int
http_is_path_chars(const char *s)
{
    for (; *s; s++)
        if (!http_is_regname_char((unsigned char)*s) && !strchr(":@/?", *s))
            return 0;
    return 1;
}

/* origin-form, absolute-form (Host from the target), or "*". */
static int
http_parse_target(struct http_head *h)
{
    const char *t = h->target, *q;

    if (strncasecmp(t, "http://", 7) == 0 ||
        strncasecmp(t, "https://", 8) == 0) {
        const char *auth = strstr(t, "//") + 2;
        size_t alen = strcspn(auth, "/?");
        if (alen == 0 || auth[0] == ':' || !http_is_host(auth, alen))
            return 400; /* also userinfo ("@"), not allowed in http URIs */
        h->host = auth;
        h->host_from_target = 1;
        h->host_len = alen;
        t = auth + alen;
        if (*t == '\0')
            t = "/";
    } else if (strcmp(t, "*") == 0) {
        if (strcmp(h->method, "OPTIONS") != 0)
            return 400;
        h->path = t;
        h->path_len = 1;
        h->query = "";
        return 0;
    } else if (t[0] != '/') {
        return strcmp(h->method, "CONNECT") == 0 ? 501 : 400;
    }
    if (!http_is_path_chars(t))
        return 400;
    if (*t == '?') {
        h->path = "/";
        h->path_len = 1;
        h->query = t + 1;
        return 0;
    }
    q = strchr(t, '?');
    h->path = t;
    h->path_len = q ? (size_t)(q - t) : strlen(t);
    h->query = q ? q + 1 : "";
    return strcmp(h->method, "CONNECT") == 0 ? 501 : 0;
}

static int
http_is_digits(const char *s, size_t len)
{
    if (len == 0 || len > 18) /* 18 digits cannot overflow uint64_t */
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* The transfer codings of every Transfer-Encoding field, in order. */
struct http_te {
    unsigned codings, chunked;
    int last_is_chunked;
};

static int
http_te_field(const char *v, struct http_te *te)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t len = strcspn(v, ",");
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
            len--;
        if (len == 0)
            break;
        te->codings++;
        te->last_is_chunked = len == 7 && strncasecmp(v, "chunked", 7) == 0;
        te->chunked += te->last_is_chunked;
        v += strcspn(v, ",");
    }
    return 0;
}

/* RFC 9112 6.3: chunked must be the final coding, once, or the length of
 * the body is unknown (400); other codings are not implemented (501). */
static int
http_te_verdict(const struct http_te *te)
{
    if (te->codings == 0 || !te->last_is_chunked || te->chunked > 1)
        return 400;
    return te->codings > 1 ? 501 : 0;
}

/* Whether a Connection field value lists token (case-insensitive). */
static int
http_has_token(const char *v, const char *token)
{
    size_t n = strlen(token);

    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t len = strcspn(v, " \t,");
        if (len == n && strncasecmp(v, token, n) == 0)
            return 1;
        v += len;
    }
    return 0;
}

/* Framing and the fields the server itself acts on (RFC 9112 6, 9110 7.2). */
static int
http_check_fields(struct http_head *h, const struct http_limits *lim)
{
    int hosts = 0, te = 0, cl = 0, close = 0, keep = 0, status;
    struct http_te te_state = {0};

    for (size_t i = 0; i < h->n_headers; i++) {
        const struct http_header *hd = &h->headers[i];
        if (http_name_is(hd, "host")) {
            if (++hosts > 1 || !http_is_host(hd->value, hd->value_len))
                return 400;
            /* An http URI has a host (RFC 9110 4.2.1): for origin- and
             * asterisk-form it is Host's, so "" and ":8080" are invalid
             * (RFC 9112 3.2: 400).  In absolute-form the target's wins. */
            if (!h->host_from_target &&
                (hd->value_len == 0 || hd->value[0] == ':'))
                return 400;
            if (h->host == NULL) {
                h->host = hd->value;
                h->host_len = hd->value_len;
            }
        } else if (http_name_is(hd, "content-length")) {
            if (++cl > 1 || !http_is_digits(hd->value, hd->value_len))
                return 400;
            h->content_length = hd->value;
        } else if (http_name_is(hd, "transfer-encoding")) {
            te++;
            if ((status = http_te_field(hd->value, &te_state)) != 0)
                return status;
        } else if (http_name_is(hd, "connection")) {
            close |= http_has_token(hd->value, "close");
            keep |= http_has_token(hd->value, "keep-alive");
        } else if (http_name_is(hd, "content-type")) {
            h->content_type = hd->value;
        } else if (http_name_is(hd, "expect")) {
            if (strcasecmp(hd->value, "100-continue") != 0)
                return 417;
            h->expect_continue = h->minor == 1;
        }
    }
    if ((h->minor == 1 && hosts == 0) || (te && cl) || (te && h->minor == 0))
        return 400;
    if (te && (status = http_te_verdict(&te_state)) != 0)
        return status;
    h->chunked = te > 0;
    /* RFC 9112 9.3: persistent by default in 1.1, on request in 1.0. */
    h->keep_alive = !close && (h->minor == 1 || keep);
    if (h->content_length) {
        h->body_length = strtoull(h->content_length, NULL, 10);
        if (lim->body && h->body_length > lim->body)
            return 413;
    }
    return 0;
}

static int
http_on_headers_complete(http_parser *p)
{
    (void)p;
    return 1; /* skip the body: ours is decoded by body.c */
}

static int
http_on_message_complete(http_parser *p)
{
    /* Stop here: nothing after the head is http-parser's business. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings http_settings = {
    .on_headers_complete = http_on_headers_complete,
    .on_message_complete = http_on_message_complete,
};

/* Cross-check the head with http-parser.  Returns 0 or 400.  A method not
 * in its table is still a method (any token, RFC 9110 9.1) and the
 * application's to answer: the rest of the head is then fed to it behind
 * "GET" (it parses in pieces, so nothing is copied); our own parser
 * checks the token. */
static int
http_run_parser(const char *buf, size_t head_len)
{
    const char *sp;
    http_parser p;
    size_t n;

    http_parser_init(&p, HTTP_REQUEST);
    n = http_parser_execute(&p, &http_settings, buf, head_len);
    if (HTTP_PARSER_ERRNO(&p) == HPE_INVALID_METHOD &&
        (sp = memchr(buf, ' ', head_len)) != NULL) {
        size_t skip = (size_t)(sp - buf);

        http_parser_init(&p, HTTP_REQUEST);
        if (http_parser_execute(&p, &http_settings, "GET", 3) == 3)
            n = skip +
                http_parser_execute(&p, &http_settings, sp, head_len - skip);
    }
    /* It refuses OWS after the digits ("5\t"), which RFC 9112 5 allows;
     * our own check of Content-Length is the strict one. */
    if (HTTP_PARSER_ERRNO(&p) == HPE_INVALID_CONTENT_LENGTH)
        return 0;
    /* Its compiled-in 80 KiB head limit is not ours: limit_request_head. */
    if (HTTP_PARSER_ERRNO(&p) == HPE_HEADER_OVERFLOW)
        return 0;
    if ((HTTP_PARSER_ERRNO(&p) != HPE_OK &&
         HTTP_PARSER_ERRNO(&p) != HPE_PAUSED) ||
        n != head_len)
        return 400;
    return 0;
}

int
http_parse_head(struct http_head *h, char *buf, size_t head_len,
                struct http_header *headers, const struct http_limits *lim)
{
    char *line = buf, *end = buf + head_len - 2;
    int status, parser_status;

    memset(h, 0, sizeof(*h));
    h->headers = headers;
    /* http-parser first, while the head is intact; its verdict counts only
     * after ours, which gives the precise status. */
    parser_status = http_run_parser(buf, head_len);
    /* The scan guarantees every line ends in CRLF and the head in CRLFCRLF. */
    char *eol = memchr(line, '\r', (size_t)(end - line));
    if ((status = http_parse_line(h, line, (size_t)(eol - line))) != 0)
        return status;
    for (line = eol + 2; line < end; line = eol + 2) {
        eol = memchr(line, '\r', (size_t)(end - line));
        if (h->n_headers == lim->fields)
            return 431;
        status = http_parse_field(line, (size_t)(eol - line),
                                  &h->headers[h->n_headers]);
        if (status != 0)
            return status;
        h->n_headers++;
    }
    if ((status = http_parse_target(h)) != 0)
        return status;
    if ((status = http_check_fields(h, lim)) != 0)
        return status;
    if (parser_status != 0)
        return parser_status;
    /* Chunk extensions and trailers share the head's limit (body.h). */
    body_init(&h->body, h->chunked, h->body_length, lim->head);
    h->body_done = body_is_done(&h->body);
    return 0;
}

ssize_t
http_body_read(struct http_head *h, const char *in, size_t in_len, char *out,
               size_t out_cap, size_t *used, const struct http_limits *lim)
{
    ssize_t n;

    *used = 0;
    if (h->body_done || in_len == 0)
        return 0;
    n = body_decode(&h->body, in, in_len, out, out_cap, used);
    h->body_raw += *used;
    if (n < 0)
        return -1;
    h->body_read += (uint64_t)n;
    /* Over the limit is a failed body, never one that ended: the caller
     * must not take what follows for a next request. */
    if (lim->body && h->body_read > lim->body) {
        errno = EFBIG;
        return -1;
    }
    h->body_done = body_is_done(&h->body);
    return n;
}
