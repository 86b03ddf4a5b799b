"""QBO Link's library, used by every Lambda function: QBO client and OAuth, stores, sync logic."""
