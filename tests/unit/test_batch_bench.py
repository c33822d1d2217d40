"""bench/bench_batch.py compares like with like: the raw and batch paths send the same bytes."""

from __future__ import annotations

import importlib.util
import json

from ..conftest import ROOT


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_batch", ROOT / "bench" / "bench_batch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_raw_and_batch_paths_send_byte_identical_requests(tmp_path):
    bench = load_bench()
    settings = bench.bench_settings("some-model", 7, tmp_path)
    bodies = bench.check_identical_requests(settings, "served", bench.prompts(3), 7, tmp_path)
    assert len(bodies) == 3
    first = json.loads(bodies[0])
    assert first == bench.raw_body("served", bench.prompts(1)[0], 7)
    assert first["messages"] == [{"role": "user", "content": bench.prompts(1)[0]}]  # no system prompt, no tools
    assert (first["temperature"], first["max_tokens"], first["ignore_eos"]) == (0.0, 7, True) and "tools" not in first


def test_a_difference_between_the_paths_stops_the_bench(tmp_path):
    import dataclasses

    import pytest

    bench = load_bench()
    settings = bench.bench_settings("some-model", 7, tmp_path)
    seeded = dataclasses.replace(settings, model=dataclasses.replace(settings.model, seed=5))  # only batch sends it
    with pytest.raises(SystemExit, match="different requests"):
        bench.check_identical_requests(seeded, "served", bench.prompts(2), 7, tmp_path)
