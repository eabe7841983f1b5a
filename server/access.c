#include "access.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"

/* Peer-controlled text in quotes: escape what would break the line. */
static void
access_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;

    for (; s && *s && n + 5 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            n += (size_t)snprintf(out + n, cap - n, "\\x%02X", ch);
        else
            out[n++] = (char)ch;
    }
    if (n == 0)
        out[n++] = '-';
    out[n] = '\0';
}

/* s as the contents of a JSON string: bytes outside printable ASCII as
 * \u00XX (latin-1, as WSGI reads them), so the line is always valid. */
static size_t
access_json_str(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f)
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        else if (ch == '"' || ch == '\\')
            n += (size_t)snprintf(out + n, cap - n, "\\%c", ch);
        else
            out[n++] = (char)ch;
    }
    out[n] = '\0';
    return n;
}

/* ,"key":"value" or ,"key":null onto line at *len. */
static void
access_json_field(char *line, size_t cap, size_t *len, const char *key,
                  const char *v, size_t vlen)
{
    char esc[1024];

    if (*len + 64 >= cap)
        return;
    if (v == NULL) {
        *len += (size_t)snprintf(line + *len, cap - *len, ",\"%s\":null", key);
        return;
    }
    access_json_str(esc, sizeof(esc), v, vlen);
    *len +=
        (size_t)snprintf(line + *len, cap - *len, ",\"%s\":\"%s\"", key, esc);
    if (*len >= cap)
        *len = cap - 1;
}

static size_t
access_json(char *line, size_t cap, const struct access_entry *e)
{
    const struct http_head *h = e->head;
    time_t sec = (time_t)(e->start_us / 1000000);
    char when[40];
    struct tm tm;
    size_t len;

    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    len = (size_t)snprintf(line, cap, "{\"time\":\"%s.%06" PRIu64 "Z\"", when,
                           e->start_us % 1000000);
    access_json_field(line, cap, &len, "remote", e->remote_addr,
                      strlen(e->remote_addr));
    access_json_field(line, cap, &len, "method", h ? h->method : NULL,
                      h ? strlen(h->method) : 0);
    access_json_field(line, cap, &len, "path", h ? h->path : NULL,
                      h ? h->path_len : 0);
    access_json_field(line, cap, &len, "query", h ? h->query : NULL,
                      h && h->query ? strlen(h->query) : 0);
    access_json_field(line, cap, &len, "protocol", h ? h->protocol : NULL,
                      h ? strlen(h->protocol) : 0);
    if (len + 160 < cap)
        len += (size_t)snprintf(
            line + len, cap - len,
            ",\"status\":%d,\"bytes\":%" PRIu64 ",\"duration_us\":%" PRIu64
            ",\"pid\":%d,\"tid\":%d",
            e->status, e->body_bytes, e->dur_us, e->pid, e->tid);
    access_json_field(line, cap, &len, "user_agent", e->user_agent,
                      e->user_agent ? strlen(e->user_agent) : 0);
    access_json_field(line, cap, &len, "referer", e->referer,
                      e->referer ? strlen(e->referer) : 0);
    access_json_field(line, cap, &len, "request_id", e->request_id,
                      e->request_id ? strlen(e->request_id) : 0);
    if (len + 2 > cap)
        len = cap - 2; /* cut: still one line, if not valid JSON */
    line[len++] = '}';
    return len;
}

void
access_log(const struct access_entry *e)
{
    char line[4096], ref[256], ua[256], req[1024], when[64];
    time_t sec = (time_t)(e->start_us / 1000000);
    const struct http_head *h = e->head;
    struct tm tm;
    int n;

    if (e->format == ACCESS_JSON) {
        log_access(line, access_json(line, sizeof(line), e));
        return;
    }
    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    if (h) {
        snprintf(line, sizeof(line), "%s %s %s", h->method, h->target,
                 h->protocol);
        access_escape(req, sizeof(req), line);
    } else {
        strcpy(req, "-");
    }
    access_escape(ref, sizeof(ref), e->referer);
    access_escape(ua, sizeof(ua), e->user_agent);
    n = snprintf(line, sizeof(line),
                 "%s - - [%s] \"%s\" %d %" PRIu64 " \"%s\" \"%s\"",
                 e->remote_addr, when, req, e->status, e->body_bytes, ref, ua);
    if (e->format == ACCESS_FORKD && n > 0 && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      " pid=%d tid=%d start=%" PRIu64 ".%06" PRIu64
                      " us=%" PRIu64,
                      e->pid, e->tid, e->start_us / 1000000,
                      e->start_us % 1000000, e->dur_us);
    log_access(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
