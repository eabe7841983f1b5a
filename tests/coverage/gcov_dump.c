/* gcov_dump: linked into the coverage build only (COV=1, `make coverage`:
 * build/cov/forkd and build/cov/tests), never into a build that serves.
 * gcov writes a process's counters when it calls exit(); two ways out of
 * forkd's processes skip that, and what those processes ran would be lost:
 *
 * - TERM at its default action.  Workers and templates take it so (the
 *   quick stop: they die at once), and the integration tests stop forkd
 *   with TERM.  signal() and sigaction() are wrapped (ld --wrap): setting
 *   TERM to SIG_DFL installs gcov_dump_on_term instead, which writes the
 *   counters and then dies of TERM at its default action, as the process
 *   would have (its parent sees the same wait status).  TERM only:
 *   test_wsgi checks that a worker catches no INT.
 * - _exit(), which the children that must not run atexit handlers use
 *   (the handler check, the template and its middle process, a worker
 *   that cannot boot, the parent of daemon_detach).  _exit is wrapped to
 *   write the counters first.
 *
 * __gcov_dump is not async-signal-safe (it takes a lock, opens and locks
 * the .gcda files).  A TERM that came while the same thread wrote its
 * counters (a worker that cannot boot, stopped by the master as it
 * leaves) would wait for that lock forever, and hold up every process
 * that writes the same files: so exit and _exit block TERM before the
 * counters are written.  A process caught inside malloc by TERM could
 * still hang until the test kills it, losing only its own counters.
 * Acceptable in a measurement build, and why this is not in server/. */
#include <signal.h>
#include <stddef.h>

void __gcov_dump(void);
sighandler_t __real_signal(int sig, sighandler_t fn);
sighandler_t __wrap_signal(int sig, sighandler_t fn);
int __real_sigaction(int sig, const struct sigaction *sa,
                     struct sigaction *old);
int __wrap_sigaction(int sig, const struct sigaction *sa,
                     struct sigaction *old);
void __real__exit(int status) __attribute__((noreturn));
void __wrap__exit(int status) __attribute__((noreturn));
void __real_exit(int status) __attribute__((noreturn));
void __wrap_exit(int status) __attribute__((noreturn));

/* No TERM in this thread from now on: see above. */
static void
gcov_dump_block_term(void)
{
    sigset_t term;

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
}

static void
gcov_dump_on_term(int sig)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};

    __gcov_dump();
    sigemptyset(&dfl.sa_mask);
    __real_sigaction(sig, &dfl, NULL);
    /* Blocked while this handler runs: delivered, at the default action,
     * as it returns. */
    raise(sig);
}

sighandler_t
__wrap_signal(int sig, sighandler_t fn)
{
    sighandler_t old;

    if (fn != SIG_DFL || sig != SIGTERM)
        return __real_signal(sig, fn);
    old = __real_signal(sig, gcov_dump_on_term);
    return old == gcov_dump_on_term ? SIG_DFL : old;
}

int
__wrap_sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
    struct sigaction mine;
    int rc;

    if (sa == NULL || sa->sa_handler != SIG_DFL ||
        (sa->sa_flags & SA_SIGINFO) || sig != SIGTERM)
        rc = __real_sigaction(sig, sa, old);
    else {
        mine = *sa;
        mine.sa_handler = gcov_dump_on_term;
        rc = __real_sigaction(sig, &mine, old);
    }
    if (rc == 0 && old != NULL && old->sa_handler == gcov_dump_on_term)
        old->sa_handler = SIG_DFL;
    return rc;
}

void
__wrap__exit(int status)
{
    gcov_dump_block_term();
    __gcov_dump();
    __real__exit(status);
}

/* exit writes the counters itself (gcov's destructor). */
void
__wrap_exit(int status)
{
    gcov_dump_block_term();
    __real_exit(status);
}
