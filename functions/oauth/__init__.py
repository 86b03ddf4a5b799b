"""The oauth function: Intuit's browser redirects (callback, disconnect and reconnect URLs)."""
