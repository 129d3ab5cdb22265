"""The HTTP API: thin routers that parse, call one service, render (assembled in ``dstrail.app``)."""
