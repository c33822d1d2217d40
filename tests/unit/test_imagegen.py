"""The imagegen plugin on a tiny random-weight Stable Diffusion pipeline built once per session,
and its openai backend against a fake images server on 127.0.0.1. A 64x64 image takes ~0.1 s."""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from assistant.errors import EngineUnreachable, PluginError, RequestRejected, ServerError, UsageError
from assistant.events import AttachmentProduced, Progress, ToolCallFinished, TurnFinished
from assistant.plugin_api import Risk
from assistant.plugin_api.tools import ArgumentError
from assistant.testing import assert_conforms, call, find_tool, invoke_tool, make_dialogue, make_plugin, run_tool, run_turn
from assistant_plugins.imagegen import ImageGen

from ..conftest import ROOT, TEST_CACHE

FAST = {"width": 64, "height": 64, "steps": 2}


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The test machines have 2 cores shared with other jobs: torch's spinning worker threads
    make a 64x64 image 10-20x slower under contention than one thread does."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the imagegen extra is not installed
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sd() -> Path:
    from assistant.testing.tiny_diffusion import build_tiny_sd

    return build_tiny_sd(TEST_CACHE / "tiny-sd")


@pytest.fixture
def imagegen(tiny_sd, tmp_path):
    # Every instance with this model shares one loaded pipeline (pipeline.py's cache).
    return make_plugin(ImageGen, {"model": str(tiny_sd)}, data_dir=tmp_path / "data")


# --- contract and settings -----------------------------------------------------------------------


def test_follows_the_plugin_contract(tiny_sd):
    assert_conforms(ImageGen)  # no settings: loads, and says "not configured" only when used
    assert_conforms(ImageGen, settings={"model": str(tiny_sd), "steps": 2, "max_steps": 8})
    assert_conforms(ImageGen, settings={"backend": "openai", "openai_base_url": "http://127.0.0.1:1/v1"})
    plugin = make_plugin(ImageGen)
    spec = find_tool(plugin, "generate")
    assert spec.name == "imagegen_generate" and spec.risk is Risk.READ_ONLY
    assert ImageGen.produces == {"image"}
    assert spec.schema["required"] == ["prompt"]
    assert set(spec.schema["properties"]) == {"prompt", "negative_prompt", "width", "height", "steps", "seed"}


def test_settings_are_validated():
    with pytest.raises(PluginError, match="modle"):
        make_plugin(ImageGen, {"modle": "x"})  # unknown keys are rejected
    with pytest.raises(PluginError, match="multiple of 8"):
        make_plugin(ImageGen, {"width": 500})
    with pytest.raises(PluginError, match="above max_steps"):
        make_plugin(ImageGen, {"steps": 60})
    assert make_plugin(ImageGen, {"max_width": 256, "max_steps": 2}).settings.width == 256  # defaults follow limits
    assert make_plugin(ImageGen, {"max_width": 256, "max_steps": 2}).settings.steps == 2
    with pytest.raises(PluginError, match="backend"):
        make_plugin(ImageGen, {"backend": "dalle"})
    s = make_plugin(ImageGen).settings
    assert (s.model, s.steps, s.width, s.height, s.guidance_scale, s.device, s.dtype) == ("", 4, 512, 512, 0.0, "auto", "auto")


# --- generating ----------------------------------------------------------------------------------


def test_generates_a_png_of_the_requested_size_with_progress_per_step(imagegen):
    run = invoke_tool(imagegen, "generate", {"prompt": "a red fox", "width": 64, "height": 96, "steps": 3, "seed": 42})
    assert run.text == "Generated a 64x96 image for 'a red fox' (seed 42, 3 steps)."
    (file,) = run.files
    assert (file.mime, file.filename, file.title) == ("image/png", "imagegen-42-a-red-fox.png", "a red fox")
    image = png(file.data)
    assert image.size == (64, 96) and image.mode == "RGB"
    assert image.text["prompt"] == "a red fox" and image.text["seed"] == "42"  # PNG text chunks
    steps = [e for e in run.events if isinstance(e, Progress)]
    assert [(e.task, e.message, e.fraction) for e in steps] == [
        ("imagegen", "step 1/3", pytest.approx(1 / 3)), ("imagegen", "step 2/3", pytest.approx(2 / 3)),
        ("imagegen", "step 3/3", 1.0),
    ]  # fmt: skip


def test_settings_give_the_defaults(tiny_sd, tmp_path):
    plugin = make_plugin(ImageGen, {"model": str(tiny_sd), "width": 72, "height": 64, "steps": 1}, data_dir=tmp_path)
    run = invoke_tool(plugin, "generate", {"prompt": "Sunset over the sea!", "seed": 1})
    assert run.text == "Generated a 72x64 image for 'Sunset over the sea!' (seed 1, 1 steps)."
    assert run.files[0].filename == "imagegen-1-sunset-over-the-sea.png"
    assert len(run.events) == 1


def test_a_prompt_longer_than_the_text_encoder_takes_is_noted(imagegen, tiny_sd):
    run = invoke_tool(imagegen, "generate", {"prompt": "a fox " * 20, **FAST, "seed": 1})
    assert "the prompt was cut to the text encoder's 77 tokens" in run.text
    assert png(run.files[0].data).text["model"] == tiny_sd.name  # a folder's name, never its path


def test_sizes_are_rounded_to_multiples_of_8_and_it_says_so(imagegen):
    run = invoke_tool(imagegen, "generate", {"prompt": "fox", "width": 70, "height": 67, "steps": 1, "seed": 0})
    assert png(run.files[0].data).size == (72, 64)
    assert "Generated a 72x64 image" in run.text
    assert "width rounded from 70 to 72, a multiple of 8" in run.text and "height rounded from 67 to 64" in run.text


def test_the_same_seed_gives_the_same_bytes(imagegen, tiny_sd):
    args = {"prompt": "a lighthouse at dusk", **FAST, "seed": 1234}
    first = invoke_tool(imagegen, "generate", args).files[0].data
    again = invoke_tool(make_plugin(ImageGen, {"model": str(tiny_sd)}), "generate", args).files[0].data
    assert first == again
    assert invoke_tool(imagegen, "generate", {**args, "seed": 1235}).files[0].data != first
    assert invoke_tool(imagegen, "generate", {**args, "prompt": "a cat"}).files[0].data != first


def test_without_a_seed_a_random_one_is_reported_and_reproduces_the_image(imagegen):
    run = invoke_tool(imagegen, "generate", {"prompt": "a boat", **FAST})
    seed = int(run.text.split("(seed ")[1].split(",")[0])
    assert run.files[0].filename == f"imagegen-{seed}-a-boat.png"
    assert invoke_tool(imagegen, "generate", {"prompt": "a boat", **FAST, "seed": seed}).files[0].data == run.files[0].data


def test_negative_prompt_with_guidance(tiny_sd, tmp_path):
    plugin = make_plugin(ImageGen, {"model": str(tiny_sd), "guidance_scale": 5.0}, data_dir=tmp_path)
    args = {"prompt": "a house", **FAST, "seed": 3}
    plain = invoke_tool(plugin, "generate", args)
    negative = invoke_tool(plugin, "generate", {**args, "negative_prompt": "trees"})
    assert plain.files[0].data != negative.files[0].data and "Note" not in negative.text
    # Without guidance (turbo models) a negative prompt does nothing, and the model is told so.
    without = invoke_tool(make_plugin(ImageGen, {"model": str(tiny_sd)}), "generate", {**args, "negative_prompt": "trees"})
    assert "negative_prompt has no effect with guidance_scale <= 1" in without.text


def test_the_pipeline_is_loaded_once_and_shared(tiny_sd, imagegen):
    other = make_plugin(ImageGen, {"model": str(tiny_sd), "steps": 1})
    invoke_tool(imagegen, "generate", {"prompt": "a", **FAST, "seed": 1})
    invoke_tool(other, "generate", {"prompt": "b", **FAST, "seed": 1})
    assert imagegen._pipeline is other._pipeline
    assert imagegen._pipeline.device == "cpu" and imagegen._pipeline.dtype == "float32"  # "auto" without CUDA


def test_cpu_threads_setting_applies_in_the_generating_thread(tiny_sd):
    import torch

    plugin = make_plugin(ImageGen, {"model": str(tiny_sd), "cpu_threads": 1})
    asyncio.run(plugin.ensure_setup())
    seen = []

    def worker():  # a worker thread whose torch thread count is not 1, like a fresh executor thread
        torch.set_num_threads(2)
        plugin.render(plugin.check("a", **FAST, seed=1), lambda message, fraction: seen.append(torch.get_num_threads()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [1, 1]
    torch.set_num_threads(1)


# --- errors the model (or the user) can act on ---------------------------------------------------


def test_limits_name_the_setting(tiny_sd):
    plugin = make_plugin(ImageGen, {"model": str(tiny_sd), "max_width": 256, "max_height": 128, "max_steps": 8})
    with pytest.raises(ValueError, match=r"width 512 is above the limit max_width = 256 .*at most 256"):
        run_tool(plugin, "generate", prompt="x", width=512, height=64)
    with pytest.raises(ValueError, match="max_height = 128"):
        run_tool(plugin, "generate", prompt="x", width=64, height=200)
    with pytest.raises(ValueError, match=r"steps 9 is above the limit max_steps = 8"):
        run_tool(plugin, "generate", prompt="x", steps=9, width=64, height=64)
    with pytest.raises(ValueError, match="at least 64"):
        run_tool(plugin, "generate", prompt="x", width=16, height=64)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        run_tool(plugin, "generate", prompt="x", steps=0, width=64, height=64)
    with pytest.raises(ValueError, match="seed must be between"):
        run_tool(plugin, "generate", prompt="x", seed=-1, width=64, height=64)
    with pytest.raises(ValueError, match="prompt is empty"):
        run_tool(plugin, "generate", prompt="   ")
    with pytest.raises(ArgumentError, match="width"):  # the schema rejects this one
        run_tool(plugin, "generate", prompt="x", width="big")


def test_not_configured_says_how_to_configure(tmp_path):
    with pytest.raises(PluginError, match=r"not configured") as info:
        run_tool(make_plugin(ImageGen), "generate", prompt="a fox")
    assert '[plugins.imagegen] model = "stabilityai/sdxl-turbo"' in str(info.value)
    with pytest.raises(PluginError, match="does not exist"):
        run_tool(make_plugin(ImageGen, {"model": str(tmp_path / "missing")}), "generate", prompt="a fox")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PluginError, match="no model_index.json"):
        run_tool(make_plugin(ImageGen, {"model": str(tmp_path / "empty")}), "generate", prompt="a fox")


def test_a_hub_id_that_is_not_cached_fails_clearly_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(PluginError, match="HF_HUB_OFFLINE=1") as info:
        run_tool(make_plugin(ImageGen, {"model": "stabilityai/sdxl-turbo"}), "generate", prompt="a fox")
    assert "hf download stabilityai/sdxl-turbo" in str(info.value)


def test_out_of_memory_suggests_a_smaller_size(imagegen):
    from assistant_plugins.imagegen import pipeline

    run_tool(imagegen, "generate", prompt="warm up", **FAST, seed=1)  # loads the real pipeline
    loaded = imagegen._pipeline

    def oom(**kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    imagegen._pipeline = pipeline.LoadedPipeline(oom, loaded.model, "cuda", "float16")
    with pytest.raises(pipeline.OutOfMemory, match="out of memory on cuda generating a 1024x1024 image") as info:
        run_tool(imagegen, "generate", prompt="huge", width=1024, height=1024)
    assert "smaller width/height" in str(info.value)

    def broken(**kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    imagegen._pipeline = pipeline.LoadedPipeline(broken, loaded.model, "cpu", "float32")
    with pytest.raises(pipeline.GenerationFailed, match="shapes cannot be multiplied"):
        run_tool(imagegen, "generate", prompt="x", **FAST)


def test_a_pipeline_without_negative_prompt_or_step_callbacks(imagegen):
    from types import SimpleNamespace

    from assistant_plugins.imagegen import pipeline

    run_tool(imagegen, "generate", prompt="warm up", **FAST, seed=1)

    def plain(prompt, width, height, num_inference_steps, guidance_scale, generator):  # e.g. an older pipeline
        return SimpleNamespace(images=[Image.new("RGB", (width, height))])

    imagegen._pipeline = pipeline.LoadedPipeline(plain, "some/model", "cpu", "float32")
    run = invoke_tool(imagegen, "generate", {"prompt": "x", "negative_prompt": "y", **FAST, "seed": 1})
    assert "this model takes no negative prompt; it was ignored" in run.text and run.events == []
    assert png(run.files[0].data).text["model"] == "some/model"


# --- in a dialogue -------------------------------------------------------------------------------


def test_a_dialogue_turn_produces_the_png_as_an_attachment(tiny_sd, tmp_path):
    dialogue = make_dialogue(
        ImageGen,
        replies=[call("imagegen_generate", {"prompt": "a red fox", "width": 64, "height": 64, "seed": 7}), "Here it is."],
        state_dir=tmp_path,
        options={"imagegen": {"model": str(tiny_sd), "steps": 2}},
    )
    events = run_turn(dialogue, "Draw a red fox")
    (produced,) = of(events, AttachmentProduced)
    assert (produced.mime, produced.filename, produced.title, produced.tool) == (
        "image/png", "imagegen-7-a-red-fox.png", "a red fox", "imagegen_generate",
    )  # fmt: skip
    assert png(Path(produced.path).read_bytes()).size == (64, 64)
    (finished,) = of(events, ToolCallFinished)
    assert finished.error is None and finished.result == "Generated a 64x64 image for 'a red fox' (seed 7, 2 steps)."
    # Progress from the worker thread reached the event stream while the tool ran, before it finished.
    assert [e.message for e in of(events, Progress)] == ["step 1/2", "step 2/2"]
    assert events.index(of(events, Progress)[-1]) < events.index(finished)
    assert dialogue.model.requests[1]["messages"][-1]["content"] == finished.result
    assert of(events, TurnFinished)[0].text == "Here it is."


def test_errors_reach_the_model_as_the_tool_result(tiny_sd, tmp_path):
    unconfigured = make_dialogue(ImageGen, replies=[call("imagegen_generate", {"prompt": "a fox"}), "Sorry."],
                                 state_dir=tmp_path / "a")  # fmt: skip
    (finished,) = of(run_turn(unconfigured, "Draw a fox"), ToolCallFinished)
    assert finished.result.startswith("error: PluginError: image generation is not configured")
    too_big = make_dialogue(
        ImageGen, replies=[call("imagegen_generate", {"prompt": "a fox", "width": 4096}), "Too big."],
        state_dir=tmp_path / "b", options={"imagegen": {"model": str(tiny_sd)}},
    )  # fmt: skip
    events = run_turn(too_big, "Draw a huge fox")
    assert "max_width = 1024" in of(events, ToolCallFinished)[0].result and not of(events, AttachmentProduced)


# --- the openai backend --------------------------------------------------------------------------


def _png_of(width: int, height: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


class FakeImagesServer:
    """A tiny OpenAI-compatible images endpoint. `mode` picks the answer; requests are recorded."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        self.mode = "ok"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, dict(self.headers), body))
                status, answer = server.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        if path != "/v1/images/generations":
            return 404, {"error": {"message": f"no route {path}"}}
        if self.mode == "unauthorized":
            return 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        if self.mode == "broken":
            return 500, {"error": "the GPU caught fire"}
        if self.mode == "no-response-format" and "response_format" in body:
            return 400, {"error": {"message": "Unknown parameter: 'response_format'."}}
        if self.mode == "url":
            return 200, {"data": [{"url": "https://example.invalid/img.png"}]}
        width, height = (int(v) for v in body["size"].split("x"))
        fmt = "JPEG" if self.mode == "jpeg" else "PNG"
        return 200, {"created": 0, "data": [{"b64_json": base64.b64encode(_png_of(width, height, fmt)).decode()}]}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def images_server():
    server = FakeImagesServer()
    yield server
    server.close()


def test_the_api_key_is_not_shown(images_server):
    plugin = openai_plugin(images_server.url)
    assert "sk-test" not in repr(plugin.settings) and "sk-test" not in json.dumps(plugin.settings.model_dump(), default=str)
    asyncio.run(plugin.ensure_setup())
    assert "sk-test" not in repr(plugin._openai)


def openai_plugin(url: str, **extra) -> ImageGen:
    return make_plugin(ImageGen, {"backend": "openai", "openai_base_url": url, "openai_api_key": "sk-test",
                                  "openai_model": "tiny-images", **extra})  # fmt: skip


def test_openai_backend_returns_the_servers_png(images_server):
    run = invoke_tool(openai_plugin(images_server.url), "generate", {"prompt": "a red fox", "width": 256, "height": 128})
    assert run.text == "Generated a 256x128 image for 'a red fox' (tiny-images)."
    (file,) = run.files
    assert (file.mime, file.filename, file.title) == ("image/png", "imagegen-a-red-fox.png", "a red fox")
    assert png(file.data).size == (256, 128)
    path, headers, body = images_server.requests[0]
    assert path == "/v1/images/generations" and headers["Authorization"] == "Bearer sk-test"
    assert body == {"model": "tiny-images", "prompt": "a red fox", "n": 1, "size": "256x128", "response_format": "b64_json"}


def test_openai_backend_converts_other_formats_and_retries_without_response_format(images_server):
    plugin = openai_plugin(images_server.url)
    images_server.mode = "jpeg"
    run = invoke_tool(plugin, "generate", {"prompt": "x", "width": 64, "height": 64, "seed": 3})
    assert png(run.files[0].data).size == (64, 64)
    assert "seed not supported by the images API, ignored" in run.text
    images_server.mode = "no-response-format"
    images_server.requests.clear()
    assert png(invoke_tool(plugin, "generate", {"prompt": "x"}).files[0].data).size == (512, 512)
    assert ["response_format" in body for _, _, body in images_server.requests] == [True, False]


def test_openai_backend_http_errors_are_clear(images_server):
    plugin = openai_plugin(images_server.url)
    images_server.mode = "unauthorized"
    with pytest.raises(RequestRejected, match=r"HTTP 401\): Incorrect API key provided") as info:
        run_tool(plugin, "generate", prompt="x")
    assert "openai_api_key" in str(info.value)
    images_server.mode = "broken"
    with pytest.raises(ServerError, match=r"HTTP 500\): the GPU caught fire"):
        run_tool(plugin, "generate", prompt="x")
    images_server.mode = "url"
    with pytest.raises(ServerError, match="without base64 image data"):
        run_tool(plugin, "generate", prompt="x")
    with pytest.raises(RequestRejected, match="HTTP 404"):
        run_tool(openai_plugin(images_server.url + "/nope"), "generate", prompt="x")
    gone = FakeImagesServer()
    gone.close()  # nothing listens on its port any more
    with pytest.raises(EngineUnreachable, match="cannot reach the images server"):
        run_tool(openai_plugin(gone.url), "generate", prompt="x")


# --- `assistant imagine` -------------------------------------------------------------------------


def imagine(argv: list[str], settings) -> int:
    from assistant.cli import _common
    from assistant_plugins.imagegen import cli

    parser = argparse.ArgumentParser(prog="assistant")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub, _common())
    return cli.run(parser.parse_args(["imagine", *argv]), settings)


def cli_settings(tmp_path: Path, **imagegen):
    from assistant.settings import load_settings

    return load_settings(
        overrides={"plugins": {"imagegen": imagegen}, "paths": {"state_dir": str(tmp_path / "state")}},
        environ={"XDG_CONFIG_HOME": str(tmp_path / "no-user-config")},
    )


def test_imagine_saves_the_png_and_prints_its_path(tiny_sd, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    settings = cli_settings(tmp_path, model=str(tiny_sd), steps=2)
    assert imagine(["a red fox", "--seed", "7", "--width", "64", "--height", "64"], settings) == 0
    out, err = capsys.readouterr()
    assert out == "imagegen-7.png\n"
    assert "step 2/2" in err and "Generated a 64x64 image for 'a red fox' (seed 7, 2 steps)." in err
    first = (tmp_path / "imagegen-7.png").read_bytes()
    assert png(first).size == (64, 64)
    # Same seed again: the same image, and the earlier file is not overwritten.
    assert imagine(["a", "red", "fox", "--seed", "7", "--width", "64", "--height", "64", "-q"], settings) == 0
    out, err = capsys.readouterr()
    assert out == "imagegen-7-1.png\n" and err == ""
    assert (tmp_path / "imagegen-7-1.png").read_bytes() == first
    assert imagine(["a fox", "--out", "pics/fox.png", "--steps", "1", "--width", "72", "--height", "64", "-q"],
                   settings) == 0  # fmt: skip
    assert capsys.readouterr().out == "pics/fox.png\n" and png((tmp_path / "pics/fox.png").read_bytes()).size == (72, 64)


def test_imagine_errors_are_usage_errors(tiny_sd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="max_steps = 50"):
        imagine(["a fox", "--steps", "99"], cli_settings(tmp_path, model=str(tiny_sd)))
    with pytest.raises(PluginError, match="not configured"):
        imagine(["a fox"], cli_settings(tmp_path))
    with pytest.raises(UsageError, match="is a folder"):
        imagine(["a fox", "--out", str(tmp_path)], cli_settings(tmp_path, model=str(tiny_sd)))
    with pytest.raises(PluginError, match="does not exist"):
        imagine(["a fox", "--image-model", str(tmp_path / "none")], cli_settings(tmp_path))
    assert not list(tmp_path.glob("*.png"))


def test_imagine_as_a_program_and_a_light_import(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path / "s"), "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "assistant_plugins.imagegen.cli", "a fox"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "[plugins.imagegen] model =" in done.stderr and done.stdout == ""
    # Importing the plugin (every assistant start does) must not import torch or diffusers.
    code = "import sys, assistant_plugins.imagegen; print(sorted({'torch', 'diffusers'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT).stdout.strip() == "[]"  # fmt: skip


def test_tiny_pipeline_build_is_reused(tiny_sd):
    from assistant.testing.tiny_diffusion import MARKER, build_tiny_sd

    stamp = (tiny_sd / MARKER).stat().st_mtime_ns
    assert build_tiny_sd(tiny_sd) == tiny_sd and (tiny_sd / MARKER).stat().st_mtime_ns == stamp
    assert json.loads((tiny_sd / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
