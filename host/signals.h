/*
 * Shutdown signals for the servers, as a descriptor to poll: SIGTERM and
 * SIGINT write their number into a pipe (the self-pipe trick, so no work
 * happens inside a handler), and SIGPIPE is ignored (a client that went away
 * shows up as EPIPE). Main thread only; one server at a time.
 */
#ifndef BERTH_SIGNALS_H
#define BERTH_SIGNALS_H

/* Install the handlers; returns the descriptor to poll, or -1 (errno set). */
int berth_signals_install(void);
/* After poll said the descriptor is readable: the signal's name, or NULL
 * when there was nothing to read. */
const char *berth_signals_take(void);
/* Put the previous handlers back and close the pipe. Safe to call when
 * install failed or was never called. */
void berth_signals_restore(void);

#endif /* BERTH_SIGNALS_H */
