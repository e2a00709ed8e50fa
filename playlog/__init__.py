"""playlog: an event-sourced backend for a music streaming service."""

__version__ = "0.1.0"
