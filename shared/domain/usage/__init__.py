"""Usage accounting: one record per model request."""
