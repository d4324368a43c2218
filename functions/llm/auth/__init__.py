"""Accounts, tokens, sessions and API keys."""
