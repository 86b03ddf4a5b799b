"""QBO: the Accounting API client, its typed errors, Intuit OAuth, the Intuit environments and the
per-realm rate governor.
"""
