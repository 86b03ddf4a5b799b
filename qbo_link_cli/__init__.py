"""The ``qbo-link`` command line."""

from typing import Final

# Here rather than in operator.py so that client.py names it without importing the operator back.
API_URL_ENV: Final = "QBO_LINK_API_URL"
