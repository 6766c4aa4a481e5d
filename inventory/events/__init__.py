"""Live stock: committed stock-level changes fanned out to local subscribers.

- `inventory.db.changes`: the ledger reader. Writers do nothing for the feed;
  committed ledger rows are read back behind a horizon no running transaction
  can fall below (PostgreSQL) or a changefeed's resolved timestamps (CockroachDB).
- `feeds`: one per process, brings those changes to the hub from a cursor, and
  resumes from it after a lost connection.
- `hub`: de-duplicates per level and fans out to bounded per-subscriber buffers;
  never blocks the feed, so writers never wait for subscribers.
- `streams`: what a subscription yields: replay from the ledger for the levels
  a client already knows, then live events, in version order per level, once.
See docs/live-stock.md.
"""
