"""What the server accepts at the connection level: a deadline for request headers, and a Host allow-list.

- **Header deadline.** uvicorn starts its keep-alive timer only after a first response, so a
  connection that never finishes its request headers (slowloris, or a port scan's idle socket)
  was held for ever: 20,000 of them exhaust the file descriptors and ``/api/health`` stops
  answering. :func:`protocol_class` gives uvicorn's h11 protocol a timer from the moment the
  connection is made; a connection whose first request has not arrived in ``header_timeout``
  seconds is closed. Later requests on a kept-alive connection are uvicorn's
  ``timeout_keep_alive``'s, and one request's headers are bounded by h11's incomplete-event limit.
- **Host allow-list.** A page on another site can reach a server on 127.0.0.1 by DNS
  rebinding (its own name resolving to 127.0.0.1): the browser then sends that name as
  ``Host``. :class:`HostAllowList` answers 400 to a Host not on the list: 127.0.0.1, localhost,
  [::1], the address served, and each ``--allow-host``.
"""

from __future__ import annotations

import json

#: Seconds a new connection may take to send its first request's headers.
HEADER_TIMEOUT = 10.0
#: Hosts every server answers to (loopback names).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def protocol_class(header_timeout: float = HEADER_TIMEOUT):
    """uvicorn's h11 protocol with a deadline on the first request's headers (for ``uvicorn.Config(http=...)``)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._headers_seen = False
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_late)

        def handle_events(self) -> None:
            # h11 yields the Request event once the headers are complete; the deadline then ends.
            super().handle_events()
            if self.cycle is not None and not self._headers_seen:
                self._headers_seen = True
                self._header_timer.cancel()

        def _headers_too_late(self) -> None:
            if not self._headers_seen and not self.transport.is_closing():
                try:
                    self.conn.send(h11.ConnectionClosed())
                except h11.LocalProtocolError:
                    pass
                self.transport.close()

        def connection_lost(self, exc) -> None:
            self._header_timer.cancel()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol


def host_name(header: str) -> str:
    """The host of a ``Host`` header, lower-case, without port or IPv6 brackets (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostAllowList:
    """ASGI middleware: 400 for an HTTP request whose ``Host`` is not allowed (see the module docstring).

    Parameters
    ----------
    app
        The ASGI application.
    hosts : iterable of str
        Allowed host names or addresses (ports and brackets ignored); the loopback names are
        always allowed. A request without a Host header (HTTP/1.0) is let through: a browser
        always sends one.
    """

    def __init__(self, app, hosts=()) -> None:
        self.app = app
        self.hosts = {host_name(h) for h in (*LOOPBACK_HOSTS, *hosts) if h}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = dict(scope.get("headers") or []).get(b"host")
            if header is not None and host_name(header.decode("latin-1")) not in self.hosts:
                body = json.dumps({"error": "Host not allowed: this server answers to "
                                            f"{', '.join(sorted(self.hosts))} (genrekit serve --allow-host NAME "
                                            "adds one)"}).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
