"""Small file helpers shared by gathering and delivery."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["sha256_file", "read_yaml", "DecodedText", "decode_text", "undecodable_bytes", "printable"]

UTF8_BOM = b"\xef\xbb\xbf"
_ESCAPED = re.compile("[\udc80-\udcff]")


def read_yaml(path: Path):
    """A YAML file's document, read as ``yaml.safe_load`` reads it, with libyaml's parser when PyYAML has it.

    The project's contracts, policies and rules are read once per stage or table: with the
    pure-Python parser that was 0.55 s of a scale-1 run (25 contracts), about a tenth with libyaml.
    """
    import yaml

    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def sha256_file(path: Path) -> str:
    """The file's SHA-256, hex, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class DecodedText:
    """A file's text; bytes its encoding cannot read are kept as lone surrogates (``surrogateescape``)."""

    text: str
    encoding: str
    undecodable: int  # how many bytes could not be read
    had_bom: bool


def decode_text(data: bytes, encodings: tuple[str, ...]) -> DecodedText:
    """Decode ``data`` with whichever of ``encodings`` reads it best, never failing.

    A UTF-8 byte-order mark means UTF-8. Text that is valid UTF-8 is UTF-8 (legacy
    Chinese encodings almost never form valid UTF-8 by chance, while UTF-8 Chinese
    often decodes without error but wrongly as GB18030). Otherwise the encoding with
    the fewest undecodable bytes wins, ties going to the first (the promised one).
    Undecodable bytes stay in the text as lone surrogates: see :func:`undecodable_bytes`.
    """
    if data.startswith(UTF8_BOM):
        text = data[len(UTF8_BOM):].decode("utf-8", errors="surrogateescape")
        return DecodedText(text, "utf-8", len(_ESCAPED.findall(text)), True)
    try:
        return DecodedText(data.decode("utf-8"), "utf-8", 0, False)
    except UnicodeDecodeError:
        pass
    try:  # the usual case: the promised encoding reads it all
        return DecodedText(data.decode(encodings[0]), encodings[0], 0, False)
    except UnicodeDecodeError:
        pass
    best: DecodedText | None = None
    for enc in encodings:
        text = data.decode(enc, errors="surrogateescape")
        bad = len(_ESCAPED.findall(text))
        if best is None or bad < best.undecodable:
            best = DecodedText(text, enc, bad, False)
    assert best is not None, "decode_text needs at least one encoding"
    return best


def undecodable_bytes(text: str) -> bytes:
    """The raw bytes a :func:`decode_text` result could not read, in order (empty if none)."""
    return bytes(ord(c) - 0xDC00 for c in _ESCAPED.findall(text))


def printable(text: str, encoding: str) -> str:
    """Text safe to store (valid Unicode), losing nothing: undecodable bytes shown as ``\\xNN``."""
    if not _ESCAPED.search(text):
        return text
    return text.encode(encoding, errors="surrogateescape").decode(encoding, errors="backslashreplace")
