"""POST /v1/chat/completions: OpenAI-compatible, routed to a provider, optionally persisted to a conversation."""
