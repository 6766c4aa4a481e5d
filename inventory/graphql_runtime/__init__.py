"""How the schema executes operations: strawberry's Schema, execution context
and extension runner, tuned for the request path, and document parsing and
validation with the product's limits, remembered per document."""
