"""The realtime function: LiveKit session tokens and room administration (always on: it runs the room sync)."""
