"""The C2SP signed-note / tlog-checkpoint text format (parse and encode, no crypto)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .errors import DecodeError

MAX_CHECKPOINT_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: ``— <name> base64(key_id[4] ‖ signature)``."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"\u2014 {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed checkpoint: the signed body's fields and every signature line (known or not)."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    signatures: tuple[NoteSignature, ...]
    body: bytes  # the signed text, up to and including the newline before the blank line

    @classmethod
    def parse(cls, data: bytes) -> Checkpoint:
        """Parse a signed note; raise DecodeError on anything not exactly of the format."""
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise DecodeError("checkpoint too large")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("checkpoint is not UTF-8") from None
        sep = text.find("\n\n")
        if sep < 0 or not text.endswith("\n"):
            raise DecodeError("checkpoint lacks the blank line or final newline")
        body, sigs = text[: sep + 1], text[sep + 2 :]
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise DecodeError("checkpoint body has fewer than 3 lines")
        origin, size_s, root_s, *ext = lines
        if not origin or not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
            raise DecodeError(f"bad checkpoint origin or tree size line {size_s!r}")
        try:
            root = base64.b64decode(root_s, validate=True)
        except binascii.Error:
            raise DecodeError("checkpoint root is not base64") from None
        if len(root) != 32:
            raise DecodeError("checkpoint root is not 32 bytes")
        signatures = []
        for line in sigs[:-1].split("\n"):
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != "\u2014" or not parts[1]:
                raise DecodeError(f"malformed signature line {line[:80]!r}")
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except binascii.Error:
                raise DecodeError("signature line is not base64") from None
            if len(blob) < 5:
                raise DecodeError("signature line too short")
            signatures.append(NoteSignature(parts[1], blob[:4], blob[4:]))
        if not signatures:
            raise DecodeError("checkpoint has no signature")
        return cls(origin, int(size_s), root, tuple(ext), tuple(signatures), body.encode())

    @staticmethod
    def make_body(origin: str, tree_size: int, root_hash: bytes, extensions: tuple[str, ...] = ()) -> bytes:
        """The signed part of a checkpoint (used by the test log)."""
        lines = [origin, str(tree_size), base64.b64encode(root_hash).decode(), *extensions]
        return ("\n".join(lines) + "\n").encode()
