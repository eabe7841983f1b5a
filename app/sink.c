/* sink: consumes a request body without keeping it, for upload benchmarks
 * and body framing tests; answers "<length> <FNV-1a 32-bit hash in hex>". */
#include "forkd.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#define SINK_STEP (64 * 1024)

#define SINK_FNV_OFFSET 2166136261u
#define SINK_FNV_PRIME 16777619u

static uint32_t
sink_fnv1a(uint32_t hash, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= SINK_FNV_PRIME;
    }
    return hash;
}

static int
sink_handle(struct forkd_req *req, void *state)
{
    static const struct forkd_header headers[] = {
        {"Content-Type", "text/plain"},
    };
    unsigned char *buf;
    unsigned long long total = 0;
    uint32_t hash = SINK_FNV_OFFSET;
    char body[48];
    ssize_t got;
    int len;

    (void)state;
    /* From the arena rather than the stack: a handler thread's stack may be
     * small, and the arena is reset after the response anyway. */
    buf = forkd_alloc(req, SINK_STEP);
    if (buf == NULL) {
        forkd_log(req, FORKD_LOG_ERROR, "sink: out of memory");
        return -1;
    }
    while ((got = forkd_read(req, buf, SINK_STEP)) > 0) {
        hash = sink_fnv1a(hash, buf, (size_t)got);
        total += (unsigned long long)got;
    }
    if (got == -1)
        return -1;

    len = snprintf(body, sizeof(body), "%llu %08" PRIx32 "\n", total, hash);
    if (forkd_start_response(req, "200 OK", headers,
                             sizeof(headers) / sizeof(headers[0])) == -1)
        return -1;
    if (forkd_write(req, body, (size_t)len) == -1)
        return -1;
    return 0;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = NULL,
    .handle = sink_handle,
    .fini = NULL,
};
