/*
 * The MCP server, split in two:
 *
 * - A transport-neutral dispatcher (mcp.c): one berth_mcp_session per MCP
 *   session holds the lifecycle state (initialize and version negotiation,
 *   the client's log level), answers ping, tools/list and logging/setLevel at
 *   once, runs every tools/call on a worker thread of its own through
 *   berth_host_call, turns the call's observer into notifications/progress
 *   and notifications/message, and honours notifications/cancelled.
 * - Transports that only move messages: stdio (mcp_stdio.c, one JSON message
 *   per line) and Streamable HTTP (mcp_http.c). A transport hands each
 *   received message to berth_mcp_session_handle() and writes what the
 *   session gives its send() callback.
 *
 * Protocol revisions: 2025-11-25 (latest), 2025-06-18 and 2025-03-26. A client
 * asking for any other revision gets the latest and decides whether to go on.
 *
 * Errors (JSON-RPC 2.0 codes):
 *   -32700 parse error: the text is not JSON, or nests deeper than
 *          BERTH_MCP_MAX_DEPTH (id null);
 *   -32600 invalid request: not an object, a batch (an array: batches were
 *          removed in 2025-06-18), jsonrpc not "2.0", an id that is not a
 *          string or integer, an id already used by a call in flight, a
 *          message over the transport's size limit, a second initialize, and
 *          any request other than initialize and ping before initialize
 *          (the MCP spec names no code for that case; -32600 says the request
 *          is not valid in this state);
 *   -32601 method not found;
 *   -32602 invalid params: missing or ill-typed params, an unknown tool, a bad
 *          cursor or log level, and - for sessions on 2025-06-18 or
 *          2025-03-26 - arguments that violate the tool's input schema.
 *          From 2025-11-25 on (SEP-1303) a schema violation is a tool
 *          execution error instead: a result with isError true whose text
 *          names the field, so the model can correct itself.
 *   -32603 internal error: the host failed to run the call;
 *   -32000 (server-defined) BERTH_MCP_MAX_IN_FLIGHT calls already run.
 * Responses the client sends (we send no requests) and unknown notifications
 * are ignored.
 *
 * Threads: the transport calls berth_mcp_session_handle() from one thread at
 * a time (its reader). send() is called from that thread and from worker
 * threads, one call at a time per session (the session holds a lock around
 * it), so a transport needs no lock of its own for one session's output.
 */
#ifndef BERTH_MCP_H
#define BERTH_MCP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "host.h"

/* The revisions we speak, newest first; the first is what we offer. */
#define BERTH_MCP_LATEST_VERSION "2025-11-25"
#define BERTH_MCP_VERSIONS_TEXT "2025-11-25, 2025-06-18 and 2025-03-26"
/* Deepest nesting of arrays and objects accepted in one message. */
#define BERTH_MCP_MAX_DEPTH 64
/* Default largest message a transport accepts (bytes). */
#define BERTH_MCP_DEFAULT_MAX_MESSAGE (4u << 20)
/* Default tools/list page size (BERTH_MCP_PAGE_SIZE overrides it). */
#define BERTH_MCP_DEFAULT_PAGE_SIZE 50
/* Most tools/call requests in flight in one session; more are refused. */
#define BERTH_MCP_MAX_IN_FLIGHT 256

typedef struct berth_mcp_session berth_mcp_session;

/* What a transport gives the session. */
typedef struct berth_mcp_transport {
    /*
     * Deliver one message: `text` is compact JSON, one line, no newline.
     * `ctx` is what the transport passed to berth_mcp_session_handle() with
     * the request this message belongs to (its response, or a progress or log
     * notification sent while it runs); NULL for a message tied to none.
     * Every request gets exactly one send() with `last` true: its response,
     * or - for a call the client cancelled, which gets no response - a send()
     * with text NULL, so a transport can close what it keeps for `ctx`.
     * A request's messages are sent in order, its response last.
     * Returns 0, or a negative berth_errc when the peer is gone (the session
     * then cancels its calls and stops sending).
     */
    int (*send)(void *ud, void *ctx, const char *text, size_t len, bool last);
    void *ud;
} berth_mcp_transport;

typedef struct berth_mcp_options {
    size_t page_size;         /* tools/list page; 0: BERTH_MCP_PAGE_SIZE or the default */
    const char *instructions; /* NULL: a default text */
} berth_mcp_options;

/* What berth_mcp_session_handle() did with a message. */
typedef enum berth_mcp_disposition {
    BERTH_MCP_ACCEPTED = 0, /* a notification or a client response: nothing will be sent */
    BERTH_MCP_ANSWERED,     /* a request (or an error) answered before returning */
    BERTH_MCP_PENDING,      /* a tools/call now runs; its messages follow from a worker */
} berth_mcp_disposition;

/* Whether `v` is a revision the dispatcher speaks (for transport headers). */
bool berth_mcp_version_supported(const char *v);

/* A session on `h` (which must outlive it). `opts` may be NULL. NULL on OOM. */
berth_mcp_session *berth_mcp_session_new(berth_host *h, const berth_mcp_transport *t,
                                         const berth_mcp_options *opts);

/* Handle one received message (`len` bytes, need not be NUL-terminated). */
berth_mcp_disposition berth_mcp_session_handle(berth_mcp_session *s, const char *text, size_t len,
                                               void *ctx);

/* The transport dropped a message larger than its limit (it need not have
 * read it all): answers -32600 with id null. */
void berth_mcp_session_reject_oversize(berth_mcp_session *s, size_t limit, void *ctx);

/* The negotiated revision, or NULL before initialize. */
const char *berth_mcp_session_protocol_version(const berth_mcp_session *s);
/* Whether initialize has been answered. */
bool berth_mcp_session_initialized(const berth_mcp_session *s);
/* tools/call requests in flight. */
size_t berth_mcp_session_in_flight(berth_mcp_session *s);

/* Ask every call of this session to stop (their cancelled() turns true);
 * their responses are still sent. Does not wait. */
void berth_mcp_session_cancel_all(berth_mcp_session *s);
/* Stop sending anything (the peer is gone); calls keep running until they
 * notice a cancellation or end. */
void berth_mcp_session_detach(berth_mcp_session *s);
/* Wait for every worker to end (joins them). */
void berth_mcp_session_wait(berth_mcp_session *s);
/* Cancel, wait and free. NULL is fine. */
void berth_mcp_session_free(berth_mcp_session *s);

/*
 * `berth serve` (alias `berth mcp`): MCP over stdin/stdout until EOF on stdin
 * or SIGTERM/SIGINT, then berth_host_cancel_all(), wait for the calls in
 * flight (their containers are killed and removed), and return the process
 * exit status (0, or 1 when stdin or stdout failed). stdout carries only MCP
 * messages; log lines go to stderr. BERTH_MCP_MAX_MESSAGE overrides the line
 * limit (bytes).
 */
int berth_mcp_serve_stdio(berth_host *h);

#endif /* BERTH_MCP_H */
