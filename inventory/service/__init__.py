"""Use cases. Each write is a function of (connection, tenant, command) -> result,
safe to run again from the start when its transaction retries."""
