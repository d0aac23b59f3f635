"""`python -m smarttickets` is the same as the `smarttickets` command."""

from smarttickets.cli import main

main()
