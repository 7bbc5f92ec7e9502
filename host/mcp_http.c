/* mcp_http.c: MCP over Streamable HTTP. Not there yet: says so and fails. */
#include <config.h>

#include <stdio.h>

#include "mcp_http.h"

int berth_mcp_serve_http(berth_host *h, const berth_mcp_http_options *opts)
{
    (void)h;
    fprintf(stderr, "berth: serve --http %s: the Streamable HTTP transport is not built yet; "
                    "use `berth serve` (stdio)\n", opts->listen ? opts->listen : "");
    return 2;
}
