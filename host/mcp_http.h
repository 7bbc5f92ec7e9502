/*
 * MCP over Streamable HTTP (mcp_http.c), on the dispatcher of mcp.h.
 *
 * One endpoint, /mcp (anything else: 404):
 * - POST carries one JSON-RPC message. Notifications and responses: 202, no
 *   body. Requests answered at once (initialize, ping, tools/list, ...):
 *   application/json, or one event on text/event-stream when the client
 *   accepts only that. A tools/call: an SSE stream carrying its progress and
 *   log notifications, then its response, then the stream ends (or one JSON
 *   body when the client does not accept text/event-stream). A client that
 *   drops a call's stream before the response cancels the call: its
 *   container is killed and removed (we keep no event log to resume from).
 * - GET: 405 (berth sends no server-initiated requests); DELETE ends the
 *   session and cancels its calls; OPTIONS answers CORS preflights.
 * - Mcp-Session-Id (128 random bits, hex) is issued by initialize and
 *   required after it: missing 400, unknown or ended 404. A
 *   MCP-Protocol-Version header we do not speak: 400.
 * - Safe by default: Host must name a loopback address (localhost,
 *   127.0.0.1, [::1]), the bound address, or `allowed_host`; an Origin, when
 *   sent, must be http(s)://localhost|127.0.0.1|[::1][:port] or
 *   `allowed_origin` (else 403: DNS rebinding protection). With
 *   `token_file`, every request needs "Authorization: Bearer <token>" (else
 *   401). Bodies over BERTH_MCP_MAX_MESSAGE bytes (default 4 MiB): 413.
 *
 * Environment: BERTH_MCP_MAX_MESSAGE (bytes), BERTH_MCP_MAX_SESSIONS (default
 * 64; initialize beyond it: 503), BERTH_MCP_SESSION_IDLE_S (default 1800:
 * sessions with nothing in flight are ended after that long unused).
 */
#ifndef BERTH_MCP_HTTP_H
#define BERTH_MCP_HTTP_H

#include "host.h"

typedef struct berth_mcp_http_options {
    const char *listen;         /* "HOST:PORT", "[V6]:PORT" or "PORT" (127.0.0.1); required.
                                 * Port 0 picks a free one (logged). A non-loopback HOST is
                                 * the user's explicit choice: allowed, with a warning. */
    const char *token_file;     /* bearer token file, or NULL for none */
    const char *allowed_origin; /* one more Origin to accept besides loopback ones */
    const char *allowed_host;   /* one more Host name to accept (e.g. the machine's name
                                 * when bound to 0.0.0.0), or NULL */
} berth_mcp_http_options;

/*
 * `berth serve --http ADDR`: serve until SIGTERM/SIGINT, then stop accepting,
 * cancel every call, wait for them (containers removed) and return the exit
 * status: 0, 1 when the server could not start, 2 for a bad option.
 * Logs "serving MCP on http://ADDR:PORT/mcp" once listening.
 */
int berth_mcp_serve_http(berth_host *h, const berth_mcp_http_options *opts);

#endif /* BERTH_MCP_HTTP_H */
