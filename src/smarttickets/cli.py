"""The `smarttickets` console command: Django's manage.py for an installed package."""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarttickets.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else ["smarttickets", *argv])
    args[0] = "smarttickets"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
