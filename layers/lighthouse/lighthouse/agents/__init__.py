"""Agent identity and presence: registration, sessions, heartbeats, offline detection."""
