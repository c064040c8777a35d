"""Errors answered the way ClickHouse answers them: its codes, its HTTP statuses, its text."""

import re
from collections.abc import Mapping

# ClickHouse's numeric codes for the errors this module raises itself.
ERROR_CODES: Mapping[str, int] = {
    "UNSUPPORTED_METHOD": 1,
    "BAD_ARGUMENTS": 36,
    "NOT_IMPLEMENTED": 48,
    "SYNTAX_ERROR": 62,
    "CANNOT_PARSE_NUMBER": 72,
    "UNKNOWN_DATABASE": 81,
    "UNKNOWN_COMPRESSION_METHOD": 89,
    "READONLY": 164,
    "QUERY_IS_TOO_LARGE": 229,
    "CANNOT_DECOMPRESS": 271,
    "CHECKSUM_DOESNT_MATCH": 40,
    "INTO_OUTFILE_NOT_ALLOWED": 358,
    "TOO_MANY_SIMULTANEOUS_QUERIES": 202,
    "SETTING_CONSTRAINT_VIOLATION": 452,
    "ACCESS_DENIED": 497,
    "UNKNOWN_EXCEPTION": 1002,
}

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, 26.x),
# by error name. READONLY is not in it: a ClickHouse server answers a refused write with 500.
_STATUS_BY_ERROR: Mapping[str, int] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"),
        403,
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "THERE_IS_NO_COLUMN",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "UNKNOWN_ROLE",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}


class ClickHouseError(Exception):
    """An error to answer the way ClickHouse does: ``Code: N. DB::Exception: message. (NAME)``."""

    def __init__(self, name: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.code = code if code is not None else ERROR_CODES.get(name, ERROR_CODES["UNKNOWN_EXCEPTION"])
        self.message = message

    @classmethod
    def from_engine(cls, error: BaseException) -> "ClickHouseError":
        """Parse chDB's exception text, unwrapping the nested copies it adds for some errors."""
        text = str(error).strip()
        start = text.find("Code: ")
        if start < 0:
            return cls("UNKNOWN_EXCEPTION", f"{type(error).__name__}: {text}")
        text = text[start:]
        # chDB wraps some errors in themselves: "Code: 73. DB::Exception: Code: 73. DB::Exception: x.
        # (UNKNOWN_FORMAT) (version 26.9.2.1). (UNKNOWN_FORMAT)"; a server reports the inner one.
        while (nested := _NESTED_ERROR.match(text)) is not None:
            text = nested.group(1)
        text = _TRAILING_REPEATS.sub("", text)
        parsed = _ENGINE_ERROR.match(text)
        if parsed is None:
            return cls("UNKNOWN_EXCEPTION", text)
        code, message, name = int(parsed.group(1)), parsed.group(2), parsed.group(3)
        return cls(name, message, code)

    @property
    def status(self) -> int:
        """ClickHouse's HTTP status for this error."""
        return _STATUS_BY_ERROR.get(self.name, 500)

    def body(self, version: str) -> bytes:
        """The response body a ClickHouse server of ``version`` sends."""
        message = self.message if self.message.endswith(".") else f"{self.message}."
        return f"Code: {self.code}. DB::Exception: {message} ({self.name}) (version {version})\n".encode()


_NESTED_ERROR = re.compile(r"Code: \d+\. DB::Exception: (Code: \d+\. DB::Exception: .*)\Z", re.DOTALL)
_TRAILING_REPEATS = re.compile(r"(?: \(version [^)]*\)\. \([A-Z0-9_]+\))+\Z")
_ENGINE_ERROR = re.compile(
    r"Code: (\d+)\. DB::Exception: (.*?)\s*\(([A-Z0-9_]+)\)(?: \(version [^)]*\))?\s*\Z", re.DOTALL
)
