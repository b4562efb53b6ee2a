"""`python -m genesis` is the `genesis` command."""

from .cli import main

main(prog_name="genesis")
