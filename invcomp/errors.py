"""The one exception type that invcomp raises for bad input, files or options."""


class InvcompError(Exception):
    """A user-facing error: its message is one line that says what is wrong."""
