"""The results file: durable appends, resume state, repair of a torn last line."""

import json

import pytest

from assistant.batch.inputs import BatchInputError
from assistant.batch.output import ResultsFile


def rec(i, error=None, **kw):
    return {"id": str(i), "answer": f"a{i}", "error": error, **kw}


async def test_append_then_read_back_last_record_wins(tmp_path, monkeypatch):
    import os

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "sub" / "out.jsonl"
    out = ResultsFile(path).open(print)
    out.append(rec(1, error={"type": "X", "message": "m", "hint": None}))
    out.append(rec(2))
    out.append(rec(1, answer="é"))
    await out.drain()
    assert 1 <= len(synced) <= 3  # every record is covered by an fsync that began after it was written
    out.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["1", "2", "1"] and "é" in lines[2]
    again = ResultsFile(path).open(print)
    assert again.lines == 3 and again.succeeded("1") and again.succeeded("2") and not again.succeeded("3")
    assert again.records["1"]["answer"] == "é"
    again.close()


@pytest.mark.parametrize("tail", [b'{"id": "3", "answ', b'{"id": "3"\n', b"\n"])
def test_torn_last_line_is_cut_off_with_a_warning(tmp_path, tail):
    path = tmp_path / "out.jsonl"
    good = b"".join(json.dumps(rec(i)).encode() + b"\n" for i in (1, 2))
    path.write_bytes(good + tail)
    warnings = []
    out = ResultsFile(path).open(warnings.append)
    assert path.read_bytes() == good and set(out.records) == {"1", "2"}
    assert len(warnings) == 1 and "incomplete line" in warnings[0] and f"{len(tail)} bytes" in warnings[0]
    out.write(rec(3))
    out.close()
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["1", "2", "3"]


def test_only_line_torn(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "1", "ans')
    warnings = []
    out = ResultsFile(path).open(warnings.append)
    assert out.records == {} and path.read_bytes() == b"" and warnings
    out.close()


def test_a_bad_line_in_the_middle_is_an_error_not_silently_dropped(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(rec(1)) + "\nnot json\n" + json.dumps(rec(2)) + "\n")
    with pytest.raises(BatchInputError, match="line 2 is not a batch record"):
        ResultsFile(path).open(print)
    path.write_text('{"no_id": 1}\n{"id": "2"}\n')
    with pytest.raises(BatchInputError, match="line 1"):
        ResultsFile(path).open(print)


def test_two_batches_cannot_write_the_same_file(tmp_path):
    first = ResultsFile(tmp_path / "out.jsonl").open(print)
    with pytest.raises(BatchInputError, match="another `assistant batch` is writing"):
        ResultsFile(tmp_path / "out.jsonl").open(print)
    first.close()
    ResultsFile(tmp_path / "out.jsonl").open(print).close()
