"""Greenbar's client: the ``greenbar`` command and a pytest plugin that streams results live.

It talks to the server only over its HTTP API and imports nothing of it.
"""

__version__ = "0.1.0"
