"""The web UI for people: Sources, Add a crawl, Jobs, Search and Health, served beside /mcp.

`build_ui_app(runtime, transport_security)` returns an ASGI app that the HTTP server mounts at `/` after its own
routes. Pages are rendered on the server from the Jinja2 templates in `templates/`; `static/` holds the stylesheet
and the one script (live job progress), so the Content-Security-Policy can forbid inline script.
"""

from crawlrag.server.ui.app import build_ui_app

__all__ = ["build_ui_app"]
