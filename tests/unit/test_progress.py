"""Progress lines on a non-terminal stderr: rate-limited, but a task's first and last always show."""

import io

from assistant.events import Progress
from assistant.progress import StderrProgress


def test_first_and_last_lines_of_a_task_always_show():
    out = io.StringIO()
    show = StderrProgress(out, interval=60)
    show(Progress("engine", "starting"))
    show(Progress("documents", "reading all of x: 140 chunks, ~300,000 prompt tokens", 0.0))
    show(Progress("documents", "read 1/140 chunks", 0.01))
    show(Progress("documents", "read 140 chunks in 9 s", 1.0))
    lines = out.getvalue().splitlines()
    assert lines == ["[engine] starting", "[documents] reading all of x: 140 chunks, ~300,000 prompt tokens",
                     "[documents] read 140 chunks in 9 s"]
