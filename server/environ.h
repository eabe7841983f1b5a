/* environ: the CGI/WSGI variables of a request (forkd_getenv and
 * forkd_environ_next), computed on demand from the parsed head so that a
 * handler pays only for what it asks. */
#ifndef FORKD_ENVIRON_H
#define FORKD_ENVIRON_H

#include <stddef.h>

struct forkd_req;
struct arena;

/* Percent-decode path[0..len) once into a NUL-terminated arena string.
 * Returns it, or NULL with *status 400 (invalid escape or %00) or 500
 * (out of memory). */
char *environ_decode_path(struct arena *a, const char *path, size_t len,
                          int *status);

/* Prepare req's environ after its head was parsed.  Returns 0 or the
 * status to answer with. */
int environ_setup(struct forkd_req *req);

/* forkd.request_id: a trusted proxy's X-Request-Id when from_header and it
 * sent a sane one, else 32 random hex digits; made once per request. */
const char *environ_request_id(struct forkd_req *req, int from_header);

#endif
