"""Request parsers of the REST API (settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"])."""

from __future__ import annotations

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def check_json_text(content: object) -> None:
    """ValueError if parsed JSON holds a lone surrogate ("\\ud800" decodes to one): I-JSON
    (RFC 7493) forbids them, and no database, channel layer or file can store one."""
    json.dumps(content, ensure_ascii=False).encode()  # UnicodeEncodeError is a ValueError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with two 400s that were 500s: JSON nested deeper than Python's
    recursion limit (a 10 KB body of "[[[[...") and lone surrogates."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            content = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        try:
            check_json_text(content)
        except ValueError:
            raise ParseError("JSON parse error - a string holds a lone surrogate "
                             "(e.g. \\ud800), which is not text.") from None
        return content
