"""Toy Python Worker for testing tests/worker_host/host.mjs.

Written as for workerd (Python Workers, compatibility date 2026-09-08):

* ``GET /`` (plain HTTP): a greeting; ``/env?name=X`` returns the binding ``X``;
  ``/last-close`` the last close event a WebSocket handler saw (JSON); ``/asset?path=P`` the answer
  of the static assets binding ``ASSETS`` for ``P``, as it is.
* WebSocket upgrade: echoes every frame (text as text, binary as binary). The
  text ``close:<code>:<reason>`` makes the Worker close with that code/reason.
  The first subprotocol the client offers is accepted; with ``?greet`` the
  Worker sends "welcome" before returning its 101 response.
* WebSocket upgrade with ``?upstream=ws://host:port/path``: opens an outbound
  WebSocket with ``fetch(..., headers={"Upgrade": "websocket"})`` and relays
  frames and close codes both ways. A refused upstream handshake is passed back
  to the client with its HTTP status and body; an unreachable upstream is a 502.
"""

from urllib.parse import parse_qs, urlsplit

from js import WebSocketPair
from pyodide.ffi import create_proxy
from workers import Response, WorkerEntrypoint, fetch

# The last close event seen by any handler, for the tests to inspect.
LAST_CLOSE: dict = {}

# Connections keep their event-listener proxies alive until they close; Python
# holds them here so they are not garbage collected mid-connection.
_LIVE: set = set()

_UNSENDABLE_CODES = {1004, 1005, 1006, 1015}


class _Connection:
    """Owns the create_proxy() wrappers of one connection's listeners."""

    def __init__(self):
        self._proxies = []
        _LIVE.add(self)

    def listen(self, socket, event, handler):
        proxy = create_proxy(handler)
        self._proxies.append(proxy)
        socket.addEventListener(event, proxy)

    def release(self):
        _LIVE.discard(self)
        for proxy in self._proxies:
            proxy.destroy()
        self._proxies.clear()


def _close(socket, code, reason):
    # close() only accepts codes a peer may send; forward the rest as "no code".
    if code in _UNSENDABLE_CODES or not 1000 <= code < 5000:
        socket.close()
    else:
        socket.close(code, reason)


def _offered_protocols(request):
    header = request.headers.get("sec-websocket-protocol") or ""
    return [p.strip() for p in header.split(",") if p.strip()]


def _new_pair():
    client, server = WebSocketPair.new().object_values()
    server.binaryType = "arraybuffer"
    server.accept()
    return client, server


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlsplit(request.url)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path == "/asset":
            return await self.env.ASSETS.fetch(f"{url.scheme}://{url.netloc}{query['path'][0]}")
        if (request.headers.get("upgrade") or "").lower() != "websocket":
            return self._http(url.path, query)
        if "upstream" in query:
            return await self._relay(request, query["upstream"][0])
        return self._echo(request, greet="greet" in query)

    def _http(self, path, query):
        if path == "/env":
            return Response(str(getattr(self.env, query["name"][0], "")))
        if path == "/last-close":
            return Response.json(LAST_CLOSE)
        return Response("echo worker\n", headers={"content-type": "text/plain"})

    def _echo(self, request, greet):
        client, server = _new_pair()
        conn = _Connection()
        if greet:
            server.send("welcome")  # sent before the client's handshake completes

        def on_message(event):
            data = event.data
            if isinstance(data, str) and data.startswith("close:"):
                _, code, reason = data.split(":", 2)
                server.close(int(code), reason)
            else:
                server.send(data)  # a str, or a JS ArrayBuffer passed back unchanged

        def on_close(event):
            LAST_CLOSE.clear()
            LAST_CLOSE.update(code=event.code, reason=event.reason, wasClean=event.wasClean)
            conn.release()

        conn.listen(server, "message", on_message)
        conn.listen(server, "close", on_close)
        protocols = _offered_protocols(request)
        headers = {"Sec-WebSocket-Protocol": protocols[0]} if protocols else None
        return Response(None, status=101, web_socket=client, headers=headers)

    async def _relay(self, request, upstream_url):
        # workerd's fetch() only takes http(s) URLs, also for WebSockets.
        target = "http" + upstream_url.removeprefix("ws") if upstream_url.startswith("ws") else upstream_url
        headers = {"Upgrade": "websocket", "X-Relayed-By": "echo-entry"}
        protocols = _offered_protocols(request)
        if protocols:
            headers["Sec-WebSocket-Protocol"] = ", ".join(protocols)
        try:
            resp = await fetch(target, headers=headers)
        except Exception as exc:
            return Response(f"upstream unreachable: {exc}", status=502)
        if resp.status != 101:
            return Response(await resp.text(), status=resp.status)

        upstream = resp.js_object.webSocket
        upstream.binaryType = "arraybuffer"
        upstream.accept()
        client, server = _new_pair()
        conn = _Connection()

        def to_upstream(event):
            upstream.send(event.data)

        def to_client(event):
            server.send(event.data)

        def client_closed(event):
            LAST_CLOSE.clear()
            LAST_CLOSE.update(code=event.code, reason=event.reason, wasClean=event.wasClean)
            _close(upstream, event.code, event.reason)
            conn.release()

        def upstream_closed(event):
            _close(server, event.code, event.reason)

        conn.listen(server, "message", to_upstream)
        conn.listen(server, "close", client_closed)
        conn.listen(upstream, "message", to_client)
        conn.listen(upstream, "close", upstream_closed)
        chosen = resp.headers.get("sec-websocket-protocol")
        headers = {"Sec-WebSocket-Protocol": chosen} if chosen else None
        return Response(None, status=101, web_socket=client, headers=headers)
