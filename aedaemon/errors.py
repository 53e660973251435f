"""User-facing errors.

Anything raised as :class:`AedaemonError` is a problem with the user's input (a file, a flag,
a message) rather than a bug: the CLI prints its message on one line and exits with code 2,
the daemon refuses the request with ``/fail`` and keeps playing.
"""


class AedaemonError(Exception):
    """An input problem with a message fit to show a musician or an operator."""


class ModelError(AedaemonError):
    """A model bundle that cannot be loaded or does not match its model.json."""


class ScoreError(AedaemonError):
    """A score file that cannot be scheduled."""


class ParameterError(AedaemonError):
    """A parameter value or argument list the address table refuses."""
