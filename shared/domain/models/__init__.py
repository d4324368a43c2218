"""Providers, the model catalog, and routing a model id to a provider."""
