"""The one place for ctwatch's exception types.

Every failure a user can cause or a log can cause maps to one of these, so the CLI can print a
clear message and choose an exit code instead of crashing.
"""


class CtwatchError(Exception):
    """Base class of every error ctwatch raises on purpose."""


class ConfigError(CtwatchError):
    """A config file, watchlist, log list or command-line value is invalid."""


class LogListError(ConfigError):
    """A log list cannot be read or contains an inconsistent log."""


class DecodeError(CtwatchError):
    """Bytes from a log or certificate do not have the structure the spec requires."""


class VerificationError(CtwatchError):
    """A signature, proof or root hash did not verify."""


class FetchError(CtwatchError):
    """A log could not be reached or answered with something unusable (after retries)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:  # crosses process boundaries (scan workers)
        return (_fetch_error, (str(self), self.status))


class LogMisbehaviour(CtwatchError):
    """A log signed or served something that proves it dishonest or broken.

    ``kind`` names the failure (``bad_sth_signature``, ``root_mismatch``, ``inconsistent_tree``,
    ``shrinking_tree``, ``timestamp_regression``, ``bad_inclusion_proof``, ``bad_leaf_index``,
    ``issuer_mismatch``, ``bad_checkpoint``, ``bad_entries``); ``evidence`` is JSON-ready and
    goes into the ``log_misbehaviour`` event verbatim.
    """

    def __init__(self, kind: str, message: str, evidence: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.evidence = evidence or {}

    def __reduce__(self) -> tuple[object, ...]:  # crosses process boundaries (scan workers)
        return (type(self), (self.kind, str(self), self.evidence))


class SinkError(CtwatchError):
    """An alert could not be delivered to a sink (it stays in the outbox and is retried)."""


def _fetch_error(message: str, status: int | None) -> FetchError:
    return FetchError(message, status=status)
