"""The HTTP and WebSocket edge: the app and its routes, the GraphQL endpoint,
request bodies, persisted queries, load shedding and the live dashboard."""
