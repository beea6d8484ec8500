"""The web server: crt.sh-compatible search API, UI pages and the certstream-compatible feed."""

from .app import create_app
from .certstream import LiveFeed
from .server import serve_app

__all__ = ["LiveFeed", "create_app", "serve_app"]
