"""The change worker: the SQS FIFO consumer that applies QBO change notices (docs/pull.md)."""
