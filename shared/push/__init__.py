"""Push: the app's clients, invoices, payments and credits into QBO (docs/push.md).

``models`` (what the tenant API accepts), ``payloads`` (pure QBO bodies) and ``readiness`` (pure
pre-flight checks).  Import the submodules directly; this package imports nothing on its own.
"""
