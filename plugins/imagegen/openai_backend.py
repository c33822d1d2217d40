"""The `openai` backend: any OpenAI-compatible images endpoint (`POST {base}/images/generations`).

The request is the common subset every such server understands: model, prompt, n=1, size and
`response_format = "b64_json"` (the image comes back inline, so no second download and no URL
that expires). Servers that reject `response_format` (OpenAI's gpt-image models always answer in
base64 and refuse the field) get the request once more without it. Seed, steps and the negative
prompt are not part of that API and are not sent: strict servers reject unknown fields.

Whatever image format comes back is re-encoded as PNG. HTTP failures become the assistant's
model errors (unreachable, timed out, rejected, server error) with the server's own message.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass, field
from typing import Any

from assistant.errors import EngineUnreachable, PluginError, RequestRejected, RequestTimedOut, ServerError

from .pipeline import png_bytes

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class OpenAIImages:
    base_url: str
    api_key: str = field(default="", repr=False)
    model: str = ""
    timeout_s: float = 120.0

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/images/generations"

    def headers(self) -> dict[str, str]:
        key = self.api_key or os.environ.get("OPENAI_API_KEY", "")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def generate(self, prompt: str, width: int, height: int) -> tuple[bytes, tuple[int, int]]:
        """PNG bytes and the (width, height) the server actually made."""
        import httpx

        body: dict[str, Any] = {"prompt": prompt, "n": 1, "size": f"{width}x{height}", "response_format": "b64_json"}
        if self.model:
            body["model"] = self.model
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0))) as http:
                resp = http.post(self.url, json=body, headers=self.headers())
                if resp.status_code == 400 and "response_format" in _error_message(resp):
                    body.pop("response_format")  # e.g. gpt-image-1: always base64, refuses the field
                    resp = http.post(self.url, json=body, headers=self.headers())
        except httpx.TimeoutException:
            raise RequestTimedOut(
                f"the images server at {self.url} did not answer within {self.timeout_s:g} s",
                hint="try again, or raise [plugins.imagegen] openai_timeout",
            ) from None
        except httpx.HTTPError as exc:  # connection refused, DNS, TLS...
            raise EngineUnreachable(
                f"cannot reach the images server at {self.url}: {type(exc).__name__}: {exc}",
                hint="check [plugins.imagegen] openai_base_url and that the server is running",
            ) from None
        self._check_status(resp)
        return self._decode(resp)

    def _check_status(self, resp: Any) -> None:
        status = resp.status_code
        if status < 400:
            return
        message = _error_message(resp)
        if status in (401, 403):
            raise RequestRejected(
                f"the images server refused the request (HTTP {status}): {message}",
                status=status, hint="set [plugins.imagegen] openai_api_key (or OPENAI_API_KEY) to a valid key",
            )  # fmt: skip
        if status == 404:
            raise RequestRejected(
                f"the images server has no {self.url} (HTTP 404): {message}",
                status=status,
                hint="check [plugins.imagegen] openai_base_url (it usually ends in /v1) and openai_model",
            )  # fmt: skip
        if status < 500:
            raise RequestRejected(
                f"the images server rejected the request (HTTP {status}): {message}",
                status=status,
                hint="check the size (many servers accept only a few, e.g. 1024x1024) and "
                "[plugins.imagegen] openai_model",
            )
        raise ServerError(f"the images server failed (HTTP {status}): {message}", hint="try again later")

    def _decode(self, resp: Any) -> tuple[bytes, tuple[int, int]]:
        try:
            data = resp.json()["data"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ServerError(f"the images server answered without an image: {resp.text[:300]!r}") from None
        b64 = data.get("b64_json") if isinstance(data, dict) else None
        if not b64:
            got = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
            raise ServerError(
                f"the images server answered without base64 image data (got: {got})",
                hint="the server must support response_format = b64_json",
            )
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ServerError(f"the images server sent invalid base64 image data: {exc}") from None
        from PIL import Image, UnidentifiedImageError

        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise ServerError(f"the images server sent data that is not an image: {exc}") from None
        if image.format == "PNG":
            return raw, image.size
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        return png_bytes(image), image.size


def _error_message(resp: Any) -> str:
    """The server's own explanation: OpenAI's {"error": {"message"}}, {"error": "..."}, {"detail"} or text."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or resp.reason_phrase or "").strip()[:300]
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err
        if err:
            return str(err)[:300]
    return str(body)[:300]


def check_configured(base_url: str) -> None:
    if not base_url.strip():
        raise PluginError(
            "[plugins.imagegen] backend = \"openai\" needs openai_base_url",
            hint=f'e.g. openai_base_url = "{DEFAULT_BASE_URL}" (with openai_api_key) or your own server\'s /v1 URL',
        )
