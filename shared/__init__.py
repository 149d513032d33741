"""The gateway's relay core: protocol logic with no I/O, shared by every runtime.

Runtimes (``standalone/`` for aiohttp, ``worker/`` for Cloudflare) accept the client socket,
open the upstream one and feed what happened into :class:`shared.relay.Relay`; the relay
answers with the actions to carry out. Nothing in this package touches a socket, a clock or
the environment itself.
"""

__version__ = "0.1.0"
