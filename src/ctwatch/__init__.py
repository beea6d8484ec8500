"""ctwatch: a verifying Certificate Transparency monitor.

The pipeline, one module or package per stage:
``loglist`` → ``sources`` (RFC 6962, static-ct-api) → ``merkle``/``verify`` → ``entries``/
``identities`` → ``match`` → ``alerts``/``state`` → ``cli``.
"""

__version__ = "0.1.0"
