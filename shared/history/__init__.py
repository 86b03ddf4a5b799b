"""The exchange history: one record per push or pull exchange, with what it read, wrote and
emitted (``exchanges``).  Written by both directions, so it sits below ``push`` and ``pull``.
"""
