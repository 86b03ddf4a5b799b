"""The api function: the tenant API (IAM-authorised HTTP API routes)."""
