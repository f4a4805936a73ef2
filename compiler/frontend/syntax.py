"""Syntax of the `.nn` text model format: the lark parser and the syntax tree it produces.

`parse_source` turns text into a `Model` (statements with their positions);
every syntax error is a `UserError` at ``file:line:col`` with the source line
and a caret. Meaning (layer kinds, arguments, shapes) is checked in
`nnopt.compiler.frontend.lower`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.tree import Meta

from nnopt.compiler.diagnostics import UserError

# --------------------------------------------------------------------------
# Syntax tree
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pos:
    """A 1-based source position."""

    line: int
    col: int


@dataclass(frozen=True)
class Ident:
    """A bare identifier: a reference to a layer or input, or a word such as ``same``."""

    name: str
    pos: Pos

    def describe(self) -> str:
        """How the value reads in an error message."""
        return self.name


@dataclass(frozen=True)
class Number:
    """An integer or floating-point literal (`text` keeps the spelling)."""

    value: int | float
    text: str
    pos: Pos

    def describe(self) -> str:
        """How the value reads in an error message."""
        return self.text


@dataclass(frozen=True)
class String:
    """A double-quoted string literal (escapes resolved)."""

    value: str
    pos: Pos

    def describe(self) -> str:
        """How the value reads in an error message."""
        return repr(self.value)


@dataclass(frozen=True)
class ListValue:
    """``[a, b, ...]`` or ``(a, b, ...)``; both spellings mean the same."""

    items: tuple[Value, ...]
    pos: Pos

    def describe(self) -> str:
        """How the value reads in an error message."""
        return "[" + ", ".join(item.describe() for item in self.items) + "]"


Value = Ident | Number | String | ListValue


@dataclass(frozen=True)
class Arg:
    """One argument of a layer: positional (`key` is None) or ``key=value``."""

    key: str | None
    value: Value
    pos: Pos


@dataclass(frozen=True)
class Layer:
    """``name = kind(args)``."""

    name: str
    pos: Pos
    kind: str
    kind_pos: Pos
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class InputDecl:
    """``input name: dtype[d0, d1, ...]``."""

    name: str
    pos: Pos
    dtype: str
    dtype_pos: Pos
    shape: tuple[Number, ...]
    shape_pos: Pos


@dataclass(frozen=True)
class OutputDecl:
    """``output a, b``: graph outputs, in order."""

    names: tuple[Ident, ...]
    pos: Pos


@dataclass(frozen=True)
class Setting:
    """A header statement: ``model NAME``, ``weights "file.npz"`` or ``seed N``."""

    keyword: str
    value: Value
    pos: Pos


Statement = Layer | InputDecl | OutputDecl | Setting


@dataclass
class Source:
    """The text of a model file, for located error messages."""

    name: str
    text: str
    _lines: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._lines = self.text.splitlines()

    @property
    def end(self) -> Pos:
        """The position just after the last character of the last non-blank line."""
        for i in range(len(self._lines), 0, -1):
            line = self._lines[i - 1]
            if '"' not in line:
                line = line.split("#", 1)[0]
            if line.strip():
                return Pos(i, len(line.rstrip()) + 1)
        return Pos(1, 1)

    def line(self, number: int) -> str:
        """The text of a 1-based line ('' when out of range)."""
        return self._lines[number - 1] if 1 <= number <= len(self._lines) else ""

    def location(self, pos: Pos) -> str:
        """``file:line:col``."""
        return f"{self.name}:{pos.line}:{pos.col}"

    def error(self, pos: Pos, message: str) -> UserError:
        """A `UserError` at `pos`, followed by the source line and a caret."""
        excerpt = ""
        if 1 <= pos.line <= len(self._lines):
            line = self._lines[pos.line - 1].expandtabs(1)
            if len(line) > 200:
                line = line[:200] + " ..."
            excerpt = f"\n{line}\n{' ' * min(pos.col - 1, 200)}^"
        return UserError(message + excerpt, self.location(pos))


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


class _PostLexer:
    """Drops line breaks inside brackets and collapses runs of them into one separator."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        """Filter the token stream (tokens are passed on at once: the contextual
        lexer picks the next token's kind from the parser state)."""
        depth = 0
        last_was_newline = True  # drops blank lines at the top of the file
        for tok in stream:
            if tok.type == "_NL":
                if depth == 0 and not last_was_newline:
                    last_was_newline = True
                    yield tok
                continue
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            last_was_newline = False
            yield tok


@cache
def _parser() -> Lark:
    grammar = files("nnopt.compiler.frontend").joinpath("nn.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=_PostLexer(),
        propagate_positions=True,
        maybe_placeholders=False,
    )


def _pos(tok: Token) -> Pos:
    return Pos(tok.line or 1, tok.column or 1)


def _number(tok: Token) -> Number:
    text = str(tok)
    value: int | float
    if any(c in text for c in ".eE"):
        value = float(text)
    else:
        value = int(text)
    return Number(value, text, _pos(tok))


@v_args(inline=True)
class _ToTree(Transformer[Token, list[Statement]]):
    """Lark parse tree to `Statement` objects."""

    def start(self, *stmts: Statement) -> list[Statement]:
        return list(stmts)

    def name(self, tok: Token) -> Ident:
        return Ident(str(tok), _pos(tok))

    def number(self, tok: Token) -> Number:
        return _number(tok)

    def string(self, tok: Token) -> String:
        return String(ast.literal_eval(str(tok)), _pos(tok))

    @v_args(inline=False, meta=True)
    def seq(self, meta: Meta, items: list[Value]) -> ListValue:
        return ListValue(tuple(items), Pos(meta.line, meta.column))

    def keyword_arg(self, key: Token, value: Value) -> Arg:
        return Arg(str(key), value, _pos(key))

    def positional_arg(self, value: Value) -> Arg:
        return Arg(None, value, value.pos)

    def layer_stmt(self, name: Token, kind: Token, *args: Arg) -> Layer:
        return Layer(str(name), _pos(name), str(kind), _pos(kind), tuple(args))

    def shape(self, *dims: Token) -> tuple[Number, ...]:
        return tuple(_number(d) for d in dims)

    @v_args(inline=False, meta=True)
    def input_stmt(self, meta: Meta, children: list[object]) -> InputDecl:
        name, dtype, dims = children
        assert isinstance(name, Token) and isinstance(dtype, Token) and isinstance(dims, tuple)
        shape_pos = Pos(_pos(dtype).line, _pos(dtype).col + len(dtype))
        return InputDecl(str(name), _pos(name), str(dtype), _pos(dtype), dims, shape_pos)

    @v_args(inline=False, meta=True)
    def output_stmt(self, meta: Meta, names: list[Token]) -> OutputDecl:
        return OutputDecl(
            tuple(Ident(str(n), _pos(n)) for n in names),
            Pos(meta.line, meta.column),
        )

    @v_args(inline=False, meta=True)
    def model_stmt(self, meta: Meta, children: list[Token]) -> Setting:
        tok = children[0]
        return Setting("model", Ident(str(tok), _pos(tok)), Pos(meta.line, meta.column))

    @v_args(inline=False, meta=True)
    def weights_stmt(self, meta: Meta, children: list[Token]) -> Setting:
        tok = children[0]
        value = String(ast.literal_eval(str(tok)), _pos(tok))
        return Setting("weights", value, Pos(meta.line, meta.column))

    @v_args(inline=False, meta=True)
    def seed_stmt(self, meta: Meta, children: list[Token]) -> Setting:
        return Setting("seed", _number(children[0]), Pos(meta.line, meta.column))


RESERVED_WORDS = ("model", "weights", "seed", "input", "output")
"""Keywords that start header, input and output statements (not usable as layer names)."""

_TOKEN_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a quoted string ("...")',
    "_NL": "end of line",
    "$END": "end of file",
}


def _describe_expected(parser: Lark, expected: set[str]) -> str:
    words: list[str] = []
    if "_NL" in expected:
        expected = expected - {"$END"}  # "end of line" covers the end of the file
    for term in sorted(expected):
        if term in _TOKEN_WORDS:
            words.append(_TOKEN_WORDS[term])
            continue
        try:
            pattern = parser.get_terminal(term).pattern
        except KeyError:
            words.append(term)
            continue
        words.append(f"'{pattern.value}'" if pattern.type == "str" else term)
    words = sorted(set(words))
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe_token(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _syntax_error(source: Source, exc: UnexpectedInput) -> UserError:
    parser = _parser()
    if isinstance(exc, UnexpectedCharacters):
        at = exc.pos_in_stream
        char = source.text[at] if at is not None and at < len(source.text) else "?"
        what = "unterminated string" if char == '"' else f"unexpected character '{char}'"
        return source.error(Pos(exc.line, exc.column), f"syntax error: {what}")
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END" or tok.line is None:
            pos = source.end
        else:
            pos = _pos(tok)
        # `accepts` is what the parser really takes here (`expected` also lists
        # the post-lexer's always-accepted line break).
        accepts = getattr(exc, "accepts", None) or exc.expected
        expected = _describe_expected(parser, set(accepts))
        words = source.line(pos.line).split()
        if tok.type == "EQUAL" and words and words[0] in RESERVED_WORDS:
            return source.error(pos, f"syntax error: '{words[0]}' is a reserved word and cannot name a layer")
        return source.error(pos, f"syntax error: unexpected {_describe_token(tok)}, expected {expected}")
    if isinstance(exc, UnexpectedEOF):
        expected = _describe_expected(parser, set(exc.expected))
        return source.error(source.end, f"syntax error: unexpected end of file, expected {expected}")
    return source.error(source.end, f"syntax error: {exc}")  # pragma: no cover - lark has no other kind


def parse_source(source: Source) -> list[Statement]:
    """Parse `.nn` text into its statements; a syntax error is a located `UserError`."""
    try:
        tree = _parser().parse(source.text)
    except UnexpectedInput as exc:
        raise _syntax_error(source, exc) from None
    result: list[Statement] = _ToTree().transform(tree)
    return result
