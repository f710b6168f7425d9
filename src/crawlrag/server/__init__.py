"""The MCP server: tools (app, search_tools, crawl_tools), crawl jobs, the shared runtime, HTTP routes, CLI commands.

`runtime.ServerRuntime` holds what one process shares; `app.build_mcp_server` puts the tools on an SDK
`MCPServer`; `http.build_http_app` serves it over Streamable HTTP; `serve` runs stdio or HTTP.
Every tool's input schema (`schemas`) is published and enforced before the tool runs (`validation`), its output
schema is `output_schemas`; search answers are fitted to a token budget (`crawlrag.answers`, `budget`); crawls
run as tasks for clients with the tasks extension (`tasks`).
"""
