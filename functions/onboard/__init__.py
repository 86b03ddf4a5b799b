"""Onboarding after a connection: read the QBO lists and apply unambiguous matches."""
