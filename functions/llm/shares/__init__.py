"""Conversation sharing: frozen, sanitised public snapshots behind unlisted slugs (Jan's shares)."""
