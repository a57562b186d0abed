#!/usr/bin/env python
"""Django's command-line utility for the relay."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
    from django.core.management import execute_from_command_line

    from relay_project.environment import exit_on_bad_settings

    exit_on_bad_settings()

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
