"""Lighthouse: coordination of AI agent teams on AWS primitives (the shared Lambda layer)."""
