"""Mappings between the app's lists and QBO's (docs/mappings.md).

``catalog`` (the app's lists and the cached QBO lists), ``automatch`` (pure proposals), ``links``
(the link store), ``versions`` (what QBO Link knows of each QBO entity), ``service`` (the mapping
routes' operations), ``export`` (its writes to QBO) and ``pairing`` (what those two share).
Import the submodules directly; this package imports nothing on its own.
"""
