"""The caller's own account: /v1/users/me, settings and preferences, data export and account deletion."""
