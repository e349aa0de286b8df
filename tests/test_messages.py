"""One line naming an error (rayflavor.messages): what every user-facing message quotes."""

from hypothesis import given, strategies as st
from ray.exceptions import RayTaskError

from rayflavor.messages import one_line, typed_line


def test_a_ray_task_error_is_described_by_its_cause_not_the_task_name():
    err = RayTaskError("_sample_task", "Traceback (most recent call last):\n  ...",
                       ValueError("only 2 of 10067 draws of this network fall inside the prior box\ndetail")
                       ).as_instanceof_cause()
    # the wrapper's own first line names the task and its process, not what went wrong
    assert isinstance(err, ValueError) and "fall inside" not in str(err).splitlines()[0]
    assert one_line(err) == "only 2 of 10067 draws of this network fall inside the prior box"
    assert typed_line(err) == "ValueError: only 2 of 10067 draws of this network fall inside the prior box"
    assert one_line(ValueError("plain\nmore")) == "plain" and one_line(RuntimeError()) == "RuntimeError"


@given(st.text(), st.sampled_from([ValueError, OSError, KeyError, RuntimeError]))
def test_any_message_gives_one_nonempty_line(text, kind):
    exc = kind(text)
    line, typed = one_line(exc), typed_line(exc)
    assert line and "\n" not in line and "\r" not in line and line == line.strip()
    assert typed.startswith(kind.__name__) and "\n" not in typed
    if str(exc).strip():
        # the line is the message's first non-blank line's text, nothing invented
        assert line in str(exc) and typed == f"{kind.__name__}: {line}"
    else:
        assert line == typed == kind.__name__
