"""One line naming an error, for every message a user reads (the CLI's ``Error: ...``, a
storage or analysis error that quotes its cause, an island's failure in ``scan.json``).

An exception's message may run over many lines (pyarrow's and Ray's do), may be empty
(``KeyError()``), and, when it was raised inside a Ray task, arrives wrapped in a
``RayTaskError`` whose message begins with the task's name and pid; its ``cause`` attribute
is the original exception, and that is the one described. No Ray import is needed for that:
the attribute is read by name.
"""

from __future__ import annotations


def _unwrapped(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name without one.

    >>> one_line(ValueError("bad seed\\nmore detail")), one_line(KeyError()), one_line(OSError("  \\n"))
    ('bad seed', 'KeyError', 'OSError')
    """
    exc = _unwrapped(exc)
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def typed_line(exc: BaseException) -> str:
    """``Type: first line`` (the type alone for an empty message), for logs that keep the type.

    >>> typed_line(ValueError("bad seed\\nmore")), typed_line(KeyError())
    ('ValueError: bad seed', 'KeyError')
    """
    exc = _unwrapped(exc)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0].strip()}" if text else type(exc).__name__
