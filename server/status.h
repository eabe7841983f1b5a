/* status: the client side of the stats endpoint (stats.h):
 *   forkd status [-c FILE | --stats ADDR] [--json] [--watch N]
 * asks the forkd that FILE configures for its screen (or its JSON) and
 * prints it; exit status 1 with one line when none answers. */
#ifndef FORKD_STATUS_H
#define FORKD_STATUS_H

/* argv[0] is "status".  Returns the exit status. */
int status_main(int argc, char **argv);

#endif
