"""The administrator console's static files (docs/console.md); no data, no AWS."""
