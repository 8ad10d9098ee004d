"""Real-time delivery: events -> per-recipient feeds in the event store -> WebSocket connections."""
