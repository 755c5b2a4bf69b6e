"""Operator regexes (playbook matchers, `matches` conditions, param patterns) in linear time.

They run on alert text, which is attacker text. Python's `re` backtracks: `(a+)+$` against a long
run of `a` never ends. RE2 takes time linear in the text; the patterns it cannot run that way
(backreferences, lookaround) are refused when the playbook loads, naming the pattern.

RE2 is a pure function of pattern and text, so workflow code may call it: it is imported passed
through the sandbox like our own models.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised to the loader, which names file and line


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern; ValueError (the loader's `file:line: field: message`) when RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as err:
        reason = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else err
        raise ValueError(
            f"bad regular expression {pattern!r}: {reason} (RE2 syntax: no backreferences or lookaround)"
        ) from None


def fullmatch(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).fullmatch(text) is not None


def search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text) is not None
