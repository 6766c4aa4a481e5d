"""An ASGI request body read ahead of the app that handles the request."""
from __future__ import annotations


def replaying(body: bytes, receive):
    """An ASGI receive that hands out an already read body once, then defers to
    the server's `receive` (which reports the disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
