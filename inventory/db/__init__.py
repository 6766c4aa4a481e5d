"""Database layer: tables, engines, the retry runner, queries and dialect differences."""
