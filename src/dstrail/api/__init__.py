"""The HTTP API: thin routers that parse, call one service, render."""

from dstrail.api.app import create_app

__all__ = ["create_app"]
