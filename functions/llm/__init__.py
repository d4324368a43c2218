"""The llm function: auth, models, chat completions, conversations, projects, users, admin."""
