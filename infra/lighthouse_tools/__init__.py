"""Tools around the platform: the `lighthouse` CLI, the embedded local cloud, deploy helpers."""
