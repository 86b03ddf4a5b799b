"""QBO: the Accounting API client and its transport, its typed errors, Intuit OAuth, the Intuit
environments and the per-realm rate governor.
"""
