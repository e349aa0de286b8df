"""An error raised inside a Ray task reaches the user as the one line of its cause."""

from ray.exceptions import RayTaskError

from rayflavor.cli.common import one_line


def test_a_ray_task_error_is_described_by_its_cause_not_the_task_name():
    err = RayTaskError("_sample_task", "Traceback (most recent call last):\n  ...",
                       ValueError("only 2 of 10067 draws of this network fall inside the prior box\ndetail")
                       ).as_instanceof_cause()
    # the wrapper's own first line names the task and its process, not what went wrong
    assert isinstance(err, ValueError) and "fall inside" not in str(err).splitlines()[0]
    assert one_line(err) == "only 2 of 10067 draws of this network fall inside the prior box"
    assert one_line(ValueError("plain\nmore")) == "plain" and one_line(RuntimeError()) == "RuntimeError"
