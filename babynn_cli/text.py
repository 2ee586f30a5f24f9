"""Text every layer shares: user text kept to one line, an error's first line, names listed short.

A leaf, like `errors` and `jsontext`: the standard library only."""

from __future__ import annotations

from collections.abc import Sequence


def one_line(text: str) -> str:
    """Line breaks and other control characters written as escapes: one line, whatever the
    user's names hold."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (a library's can run to pages), or its type's
    name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def listing(names: Sequence[str], most: int = 8) -> str:
    """Names for a message, cut after `most`: 'a, b, c, and 1,234 more'."""
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])}, and {len(names) - most:,} more"
