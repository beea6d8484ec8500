"""ctwatch: a verifying Certificate Transparency monitor.

The pipeline, one module or package per stage:
``loglist`` → ``sources`` (RFC 6962, static-ct-api) → ``merkle``/``verify`` → ``entries``/
``identities`` → ``match`` → ``alerts``/``state`` → ``cli``.
"""

from ._compiled import install_guard

__version__ = "0.1.0"

install_guard()
