"""Live stock: committed stock-level changes fanned out to local subscribers.

- `inventory.db.changes`: writers note each change and announce it inside the
  writing transaction (pg_notify, delivered only on COMMIT).
- `feeds`: one per process, brings committed changes in: `NotifyFeed` (LISTEN
  on a dedicated connection, catching up from the ledger after a reconnect) or
  `PollFeed` (polls the ledger; for CockroachDB, or by choice).
- `hub`: de-duplicates per level and fans out to bounded per-subscriber buffers;
  never blocks the feed, so writers never wait for subscribers.
- `streams`: what a subscription yields: replay from the ledger for the levels
  a client already knows, then live events, in version order per level, once.
See docs/live-stock.md.
"""
