"""Agent credentials: derived secrets, signed session tokens, replay-proof nonces."""
