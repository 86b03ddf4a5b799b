"""QBO Link's library, the code every Lambda function runs.

Packages by concept, from the bottom up (docs/architecture.md has the import rules):

- ``kernel``: settings, clock, observability, the events catalogue and constants; no AWS calls.
- ``adapters``: the only places boto3's DynamoDB and SQS errors are translated and DynamoDB update
  expressions are built.
- ``qbo``: the Accounting API client, its typed errors, Intuit OAuth, environments and the rate
  governor.
- ``connections``: connecting a firm's company (OAuth flows, state), the connection store, the token
  vault and connection health.
- ``mapping``: the app's lists against QBO's (catalog, automatch, links) and the version ledger.
- ``history``: the exchange history both directions write.
- ``push``: the app's documents into QBO (models, payloads, readiness, service, worker, posting log).
- ``pull``: QBO's changes back to the app (webhook intake, change worker, cursors, sweep).
- ``wiring``: the composition root; only ``functions/*`` and the local stack import it.
"""
