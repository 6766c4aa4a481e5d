"""GraphQL types, inputs, unions and enums (no SQL)."""
