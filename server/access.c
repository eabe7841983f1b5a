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

void
access_log(const struct access_entry *e)
{
    char line[2048], ref[256], ua[256], req[1024], when[64];
    time_t sec = (time_t)(e->start_us / 1000000);
    const struct http_head *h = e->head;
    struct tm tm;
    int n;

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
                 "%s - - [%s] \"%s\" %d %" PRIu64 " \"%s\" \"%s\" pid=%d "
                 "tid=%d start=%" PRIu64 ".%06" PRIu64 " us=%" PRIu64,
                 e->remote_addr, when, req, e->status, e->body_bytes, ref, ua,
                 e->pid, e->tid, e->start_us / 1000000, e->start_us % 1000000,
                 e->dur_us);
    log_access(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
