"""The kernel: settings, the clock, observability (logger, metrics, tracer), the events catalogue
and the project's constants.  Every other package may import it; it imports none of them.
"""
