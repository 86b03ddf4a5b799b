"""The events to the host app's HTTPS endpoint, signed and retried (docs/events.md)."""
