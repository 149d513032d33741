"""Accounting: what every session costs, where it is written, and the budgets that cap it.

- :mod:`.meter`: the meter the relay feeds as frames pass (frames, bytes, audio seconds, the usage
  of ``response.done`` and GPT-Live's ``session.usage.updated``, per-response latency, cost).
- :mod:`.record`: the ledger's rows, handed to the adapter in :class:`shared.actions.RecordUsage`
  at checkpoints (USAGE_CHECKPOINT_SECONDS) and when the session ends, however it ends.
- :mod:`.prices`: the price table (shipped defaults, PRICES_FILE); :mod:`.counts`: token counts.
- :mod:`.budget`: a token's ``max_cost_usd`` and BUDGET_USD_PER_SUBJECT_PER_DAY.
- :mod:`.ledger`: the ledger's SQL (the standalone server's SQLite, the Worker's D1).
- :mod:`.sink`: the metrics the relay reports to (Prometheus on the standalone server).

The reference is ``docs/usage.md``.
"""
