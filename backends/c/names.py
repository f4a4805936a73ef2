"""Turning names from model files into safe C: identifiers, string literals, comments.

Names in models are arbitrary text (``serving_default_input_1:0``, ``x */ evil(); /*``,
names with newlines or trigraphs). Everything the generator prints that comes
from a model goes through one of these functions:

* `identifier` keeps ``[A-Za-z0-9_]``, never starts with a digit, never is a C
  keyword or a reserved name (``_X...``, ``__...``), and is unique within its
  `Namer`.
* `string_literal` escapes quotes, backslashes, control characters, non-ASCII
  bytes (as octal) and ``??`` (trigraphs, live in ``-std=c99``).
* `comment_text` keeps comments on one line and cannot close them early.
"""

from __future__ import annotations

import re

_RESERVED = """auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary main errno assert NULL"""
C_KEYWORDS = frozenset(_RESERVED.split())
"""C99 keywords and names a generated identifier must not take."""

_INVALID = re.compile(r"[^A-Za-z0-9_]+")


def identifier(text: str, fallback: str = "x") -> str:
    """A C identifier made of the letters, digits and underscores of `text` (lower case kept)."""
    name = _INVALID.sub("_", text).strip("_")
    name = re.sub(r"__+", "_", name)
    if not name:
        name = fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    if name in C_KEYWORDS:
        name = f"{name}_"
    return name


def macro_part(text: str, fallback: str = "X") -> str:
    """An upper-case identifier fragment for macro names (``kws-dscnn`` -> ``KWS_DSCNN``)."""
    return identifier(text, fallback.lower()).upper()


class Namer:
    """Hands out unique identifiers (``conv``, ``conv_2``, ...) within one scope."""

    def __init__(self, reserved: set[str] | None = None, max_length: int = 48) -> None:
        self.used: set[str] = set(reserved or ())
        self.max_length = max_length

    def __call__(self, text: str, fallback: str = "x") -> str:
        base = identifier(text, fallback)[: self.max_length].rstrip("_") or fallback
        name, k = base, 2
        while name in self.used or name in C_KEYWORDS:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name


def string_literal(text: str) -> str:
    """A C string literal holding `text` (UTF-8 bytes; safe against every escape and trigraph)."""
    out = ['"']
    prev_question = False
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch == '"':
            piece = '\\"'
        elif ch == "\\":
            piece = "\\\\"
        elif ch == "?":
            piece = "\\?" if prev_question else "?"
        elif 0x20 <= byte < 0x7F:
            piece = ch
        else:
            piece = f"\\{byte:03o}"
        prev_question = ch == "?"
        out.append(piece)
    out.append('"')
    return "".join(out)


def comment_text(text: str, limit: int = 120) -> str:
    """`text` made safe inside a ``/* ... */`` comment on one line."""
    cleaned = "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in text)
    cleaned = cleaned.replace("*/", "* /").replace("/*", "/ *")
    cleaned = re.sub(r"\?(?=\?)", "?-", cleaned)  # no trigraphs
    cleaned = cleaned.rstrip("\\")
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 3] + "..."
    return cleaned
