/*
 * MCP over Streamable HTTP (mcp_http.c), on the dispatcher of mcp.h.
 */
#ifndef BERTH_MCP_HTTP_H
#define BERTH_MCP_HTTP_H

#include "host.h"

typedef struct berth_mcp_http_options {
    const char *listen;         /* "127.0.0.1:PORT" or "[::1]:PORT"; required */
    const char *token_file;     /* bearer token file, or NULL for none */
    const char *allowed_origin; /* one more Origin to accept besides loopback ones */
} berth_mcp_http_options;

/* `berth serve --http ADDR`: serve until SIGTERM/SIGINT; returns the exit status. */
int berth_mcp_serve_http(berth_host *h, const berth_mcp_http_options *opts);

#endif /* BERTH_MCP_HTTP_H */
