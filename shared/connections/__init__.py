"""Connections: a firm's QBO company connected once and kept healthy.

``flows`` (connect, callback, reconnect, disconnect), ``callback`` (Intuit's redirect after
consent), ``oauth_state`` (the signed state, its records, the return URLs), ``company`` (the company
facts), ``store`` (the connection records), ``vault`` (KMS-encrypted tokens, leased refresh),
``sealing`` (the KMS encryption), ``keep_alive`` (the daily refresh sweep) and ``health`` (the
health state machine).
"""
