"""Delivery of QBO Link's events to the host app's HTTPS endpoint (docs/events.md, "Delivery to
your HTTPS endpoint").

EventBridge stays the bus.  When the stack is given an endpoint, a rule on the bus (source
``qbo-link``) puts every event on a queue, and the deliverer (``functions/deliver``) POSTs each one,
signed, to the endpoint, pacing its own retries and giving up into the queue's DLQ:

- ``signing``: the headers and the HMAC-SHA256 signature (pure);
- ``policy``: which answer is delivered, retried or refused for good, and the backoff (pure);
- ``endpoint``: which URLs may be configured (pure; the CDK app and the local stack check with it);
- ``settings``: the deliverer's environment and its signing key (Secrets Manager);
- ``queue``: SQS's side of a retry (visibility) and of giving up (the DLQ);
- ``deliverer``: one delivery of a batch of queue records.
"""
