"""A local QuickBooks Online sandbox: Intuit OAuth 2.0 and Accounting API v3 on loopback."""
