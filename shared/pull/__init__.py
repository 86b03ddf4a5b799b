"""Pulling changes from QBO back to the app: webhook intake, the change worker and the sweep."""
