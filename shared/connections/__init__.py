"""Connections: a firm's QBO company connected once and kept healthy.

``flows`` (connect, callback, reconnect, disconnect, the OAuth state), ``store`` (the connection
records), ``vault`` (KMS-encrypted tokens, leased refresh), ``sealing`` (the KMS encryption),
``keep_alive`` (the daily refresh sweep) and ``health`` (the health state machine).
"""
