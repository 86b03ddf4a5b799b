"""The ``qbo-link`` command line."""
