"""The scheduled pull sweep: CDC from each connected tenant's cursor (docs/pull.md)."""
