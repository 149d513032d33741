"""The standalone runtime: the relay core behind an aiohttp server, for a VM or a laptop."""
