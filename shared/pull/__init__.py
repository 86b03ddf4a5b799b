"""Pull: QBO's changes back to the app (docs/pull.md).

``notifications`` (the webhook intake), ``changes`` (the change worker and its service),
``documents`` (the documents and payments of a change), ``rows`` (reading QBO's rows), ``cursors``
(the per-tenant read windows) and ``sweep`` (the scheduled fan-out).
"""
