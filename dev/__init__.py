"""The local stack behind `make run`: embedded PostgreSQL, the local model server, one process per function and the
dev gateway. `dev.stack` holds the reusable steps, `dev.run` wires them together."""
