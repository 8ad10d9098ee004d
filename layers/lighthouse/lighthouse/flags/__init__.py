"""Feature flags: Powertools FeatureFlags over AppConfig (AWS) or the event store (emulators)."""
