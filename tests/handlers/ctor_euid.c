/* ctor_euid: a handler whose constructor records the effective uid it
 * runs as (issue 11: a handler's constructors must never run as root in
 * the master).  CTOR_EUID_FILE (a string, given with -D at compile time)
 * is the file each run appends "EUID\n" to. */
#include <forkd.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef CTOR_EUID_FILE
#error "compile with -DCTOR_EUID_FILE='\"/path\"'"
#endif

__attribute__((constructor)) static void
ctor_euid_record(void)
{
    char line[32];
    int fd =
        open(CTOR_EUID_FILE, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    int n = snprintf(line, sizeof line, "%u\n", (unsigned)geteuid());

    if (fd < 0)
        return;
    (void)write(fd, line, (size_t)n);
    close(fd);
}

static int
ctor_euid_handle(struct forkd_req *req, void *state)
{
    static const char body[] = "ok\n";
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", "3"}};

    (void)state;
    if (forkd_start_response(req, "200 OK", h, 2) != 0)
        return -1;
    return forkd_write(req, body, 3) == 3 ? 0 : -1;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .handle = ctor_euid_handle,
};
