"""How deep a JSON body may nest, checked on the raw bytes before any decoder runs.

msgspec (like every recursive decoder) raises RecursionError, not a decode error,
on JSON nested about a thousand deep, and walks over deep values recurse too. No
FHIR resource nor any request of ours nests anywhere near 64 levels, so every JSON
body is measured first and refused past that depth.

The measure works in C-speed passes over copies no larger than the body (which the
body-size limit already bounds): escapes and strings are cut out (so brackets inside
text do not count), every other byte but the brackets is deleted, and then each pass
of `replace(b"()", b"")` removes the innermost level. What is left after `limit`
passes nests deeper than the limit. No Python loop runs per byte, and the regular
expressions have no nested repetition, so hostile input cannot make them backtrack."""

from __future__ import annotations

import re

from domain.errors import DomainError, FieldProblem

MAX_JSON_DEPTH = 64

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
# Opening brackets become "(", closing ones ")"; every other byte is deleted.
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class NestedTooDeep(DomainError):
    """Answered 400: the body is not something any of our decoders should walk."""

    kind = "nested-too-deep"
    title = "The JSON body nests too deep"

    def __init__(self, limit: int):
        super().__init__(
            f"JSON nested deeper than {limit} levels is refused.",
            errors=[FieldProblem("body", f"nests deeper than {limit} levels")],
        )


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Raises NestedTooDeep when `body`, read as JSON, nests deeper than `limit`.

    Malformed bodies that are not too deep pass: the decoder reports them. An
    unclosed run of more than `limit` openers (`[[[[…`) counts as too deep, since a
    decoder would descend that far before it noticed the missing end."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    text = _STRING.sub(b"", _ESCAPE.sub(b"", body))
    brackets = text.translate(_BRACKETS, _NOT_BRACKETS)
    for _ in range(limit):
        shorter = brackets.replace(b"()", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
        if not brackets:
            return
    # Each pass removed one level, so a pair still standing has more than `limit`
    # levels around and inside it. Without one, what is left are unmatched brackets
    # (")))((("): malformed, and too deep only if the unclosed openers are.
    if b"()" in brackets or brackets.count(b"(") > limit:
        raise NestedTooDeep(limit)
