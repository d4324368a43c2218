"""Conversations and their items (Jan's conversation store, OpenAI's Conversations shapes)."""
