"""The kernel: settings, the clock, observability (logger and metrics), the events catalogue and
its publisher, reasons and the project's constants.  Every other package may import it; it imports
none of them.
"""
