"""The Cloudflare Python Worker runtime: the relay core behind workerd's WebSocket API."""
