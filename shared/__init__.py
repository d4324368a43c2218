"""The platform library every function imports: settings, database, auth, errors, IDs, pagination,
outbound HTTP, the inference client, telemetry and the app factory."""
