"""Reading SQL before chDB runs it, and refusing what a read-only endpoint must not run.

The endpoint needs a few facts about a statement before chDB runs it: where an INSERT's data
starts, which output format it asks for, and (in read-only mode) whether it reaches outside the
store. The lexer mirrors ClickHouse's quoting rules (strings with backslash escapes and doubled
quotes, Unicode ‘’/“” quotes without escapes, $tag$ heredocs, --, "# " and /* */ comments). Where
it cannot be exact it errs towards seeing more code, never less: text that ClickHouse would treat
as a string or a comment is never taken for code that escapes a check. It works on bytes so an
INSERT's binary data can be split off at an exact offset.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from salespulse.embedded.query_server.errors import ClickHouseError

# Table functions that only read what the engine already holds. Every other one (file, url, s3,
# remote, mysql, python, executable, iceberg... and whatever a new chDB adds) reaches outside the
# store and is refused in read-only mode; the list is the complement of this one, not a denylist,
# so a new I/O table function is refused until someone decides it is harmless.
SAFE_TABLE_FUNCTIONS = frozenset(
    {
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "primes",
        "generate_series",
        "generateseries",
        "generaterandom",
        "values",
        "sqlstandardvalues",
        "view",
        "viewifpermitted",
        "viewexplain",
        "merge",
        "null",
        "loop",
        "format",
        "dictionary",
    }
)
# Ordinary functions that read the file system; chDB lets file() read any path the worker can.
UNSAFE_FUNCTIONS = frozenset({"file"})

# Statements whose answer is a result set: ClickHouse then reports its format in X-ClickHouse-Format,
# which clickhouse-connect reads to tell an empty result from a statement without one.
_RESULT_KEYWORDS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "CHECK", "FROM", "("}
)


_TOKEN = re.compile(
    rb"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|\#[ !][^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>
          '(?:[^'\\]++|\\.|\\\Z|'')*+(?:'|\Z)
        | \xe2\x80\x98.*?(?:\xe2\x80\x99|\Z)
        | \$(?P<tag>[A-Za-z0-9_]*)\$.*?(?:\$(?P=tag)\$|\Z)
      )
    | (?P<quoted>
          "(?:[^"\\]++|\\.|\\\Z|"")*+(?:"|\Z)
        | `(?:[^`\\]++|\\.|\\\Z|``)*+(?:`|\Z)
        | \xe2\x80\x9c.*?(?:\xe2\x80\x9d|\Z)
      )
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[;(),.])
    | (?P<other>[^\s'"`;(),.A-Za-z_$/\#\-\xe2]+|.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    start: int
    end: int
    text: bytes

    @property
    def word(self) -> str:
        """The upper-case keyword, or "" when the token is not a bare word."""
        return self.text.decode("ascii").upper() if self.kind == "word" else ""

    @property
    def name(self) -> str | None:
        """The identifier a word or quoted token spells, lower-cased; None for other tokens."""
        if self.kind == "word":
            return self.text.decode("ascii").lower()
        if self.kind == "quoted":
            inner = self.text[3:-3] if self.text.startswith(b"\xe2") else self.text[1:-1]
            return re.sub(rb"\\(.)|([\"`])\2", rb"\1\2", inner).decode("utf-8", "replace").lower()
        return None


def _tokens(sql: bytes) -> Iterator[_Token]:
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "other"  # the outermost group: a heredoc's tag reports as "string"
        if kind in ("space", "comment"):
            continue
        yield _Token(kind, match.start(), match.end(), match.group())


@dataclass
class SqlShape:
    """What the endpoint needs to know about one request's SQL before running it."""

    keyword: str = ""
    output_format: str | None = None
    # An INSERT ... FORMAT X: where its statement ends and its data (the rest of the request) starts.
    insert_format: str | None = None
    insert_settings_start: int | None = None
    insert_format_start: int | None = None
    data_start: int | None = None
    functions: set[str] = field(default_factory=set)
    reads_path_literal: bool = False
    into_outfile: bool = False
    # Names assigned (``name = ...``) after a SETTINGS keyword, anywhere in the statement: a
    # superset of the settings its SETTINGS clauses change (a later `WHERE a = 1` adds `a`).
    settings_named: set[str] = field(default_factory=set)
    second_statement_at: int | None = None

    @property
    def returns_rows(self) -> bool:
        """Whether the statement answers with a result set (so ClickHouse names its format)."""
        return self.keyword in _RESULT_KEYWORDS


def inspect_sql(sql: bytes) -> SqlShape:
    """Read the facts the endpoint checks from a statement; an INSERT's data is not scanned."""
    shape = SqlShape()
    previous: _Token | None = None
    format_keyword: _Token | None = None
    pending_format: _Token | None = None
    depth = 0
    ended = False
    insert_has_source = False
    after_settings = False
    for token in _tokens(sql):
        if ended:
            shape.second_statement_at = token.start
            break
        if pending_format is not None:
            # FORMAT X is the output format only when it ends the statement (or precedes SETTINGS);
            # otherwise "format" was a column name.
            if token.word == "SETTINGS" or token.text == b";":
                shape.output_format = pending_format.text.decode("ascii")
            pending_format = None
        word = token.word
        if word == "SETTINGS":
            after_settings = True
        elif (
            after_settings
            and token.text.startswith(b"=")
            and previous is not None
            and (assigned := previous.name) is not None
        ):
            shape.settings_named.add(assigned)
        if not shape.keyword:
            shape.keyword = word or token.text.decode("utf-8", "replace")
        if token.text == b"(":
            if previous is not None and (name := previous.name) is not None:
                shape.functions.add(name)
            depth += 1
        elif token.text == b")":
            depth = max(0, depth - 1)
        elif token.text == b";":
            ended = True
        elif token.kind == "string" and previous is not None and previous.word in ("FROM", "JOIN"):
            shape.reads_path_literal = True
        elif word == "OUTFILE" and previous is not None and previous.word == "INTO":
            shape.into_outfile = True
        elif depth == 0 and shape.keyword == "INSERT":
            if word in ("VALUES", "SELECT", "WITH"):
                insert_has_source = True
            elif word == "SETTINGS" and not insert_has_source:
                shape.insert_settings_start = token.start
            elif (
                token.kind == "word"
                and format_keyword is not None
                and previous is format_keyword
                and not insert_has_source
            ):
                shape.insert_format = token.text.decode("ascii")
                shape.insert_format_start = format_keyword.start
                shape.data_start = _data_start(sql, token.end)
                return shape  # the rest is data, possibly binary: never scan it
        elif depth == 0 and token.kind == "word" and previous is not None and previous is format_keyword:
            pending_format = token
        if word == "FORMAT" and depth == 0:
            format_keyword = token
        previous = token
    if pending_format is not None:
        shape.output_format = pending_format.text.decode("ascii")
    return shape


def _data_start(sql: bytes, position: int) -> int:
    """Where INSERT data starts after its format name: past blanks and at most one line break, as in ClickHouse."""
    while position < len(sql) and sql[position] in b" \t\f":
        position += 1
    if sql[position : position + 1] == b"\r":
        position += 1
    if sql[position : position + 1] == b"\n":
        position += 1
    return position


def check_statement(shape: SqlShape, readonly: bool, table_functions: frozenset[str]) -> None:
    """Refuse what a ClickHouse server refuses over HTTP, and in read-only mode what reads outside the store."""
    if shape.second_statement_at is not None:
        raise ClickHouseError(
            "SYNTAX_ERROR",
            f"Syntax error (Multi-statements are not allowed): failed at position {shape.second_statement_at + 1}: "
            "send one statement per request",
        )
    if shape.into_outfile:
        raise ClickHouseError(
            "INTO_OUTFILE_NOT_ALLOWED",
            "INTO OUTFILE is not allowed over HTTP: the result is the response body; save it on the client",
        )
    if not readonly:
        return
    outside = sorted(
        name
        for name in shape.functions
        if name in UNSAFE_FUNCTIONS or (name in table_functions and name not in SAFE_TABLE_FUNCTIONS)
    )
    if outside:
        raise ClickHouseError(
            "ACCESS_DENIED",
            f"{', '.join(f'{name}()' for name in outside)} reads data outside the store, which this read-only "
            "endpoint does not allow; query the database's tables and views instead",
        )
    if shape.reads_path_literal:
        raise ClickHouseError(
            "ACCESS_DENIED",
            "reading a file named by a string literal after FROM is not allowed by this read-only endpoint; "
            "query the database's tables and views instead",
        )
