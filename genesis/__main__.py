"""`python -m genesis` is the `genesis` command."""

from .cli import entry_point

entry_point()
