"""Pure domain model: quantities, commands, results and errors. No I/O, no imports of ours."""
