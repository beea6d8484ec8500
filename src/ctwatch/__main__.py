"""``python -m ctwatch`` = the ``ctwatch`` command."""

from .cli import main

main()
