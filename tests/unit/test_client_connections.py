"""Streamed answers give their connection back to the pool: sequential requests reuse one TCP
connection (reading stopped at [DONE] used to close it, costing every request a new one)."""

import asyncio
import json
import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import StreamingResponse  # noqa: E402

from assistant.model.client import ChatClient, ClientConfig  # noqa: E402


def serve() -> tuple[str, list[int], uvicorn.Server]:
    app = FastAPI()
    ports: list[int] = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        ports.append(request.client.port)

        async def events():
            chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1", ports, server


def test_sequential_streams_reuse_one_connection():
    url, ports, server = serve()
    try:
        async def go():
            async with ChatClient(ClientConfig(url, model="m")) as client:
                for _ in range(3):
                    done = await client.chat([{"role": "user", "content": "x"}])
                    assert done.text == "hi"

        asyncio.run(go())
        assert len(ports) == 3 and len(set(ports)) == 1, ports
    finally:
        server.should_exit = True


def test_certificates_are_loaded_only_for_https(monkeypatch):
    """A client for the local engine (plain http) skips loading the CA bundle; https keeps verifying."""
    import httpx

    seen: list[object] = []
    real = httpx.AsyncClient.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("verify", True))
        real(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", spy)
    ChatClient(ClientConfig(base_url="http://127.0.0.1:8000/v1", model="m"))
    ChatClient(ClientConfig(base_url="HTTPS://api.example.com/v1", model="m"))
    assert seen == [False, True]
