"""Images for the model: local files and URLs become downscaled data URIs.

Sending a data URI (rather than the URL) means the server never needs network access,
and downscaling here keeps requests small and within what the vision encoder uses anyway.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from ..errors import AttachmentError

_FORMATS_KEPT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024


def fetch_bytes(url: str, timeout: float) -> bytes:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            resp.raise_for_status()
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise AttachmentError(f"{url} is larger than {MAX_DOWNLOAD_BYTES // 2**20} MiB")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise AttachmentError(
            f"could not download image {url}: {exc}",
            hint="check the URL, or download the file and attach the local path",
        ) from None


def image_bytes_to_data_uri(data: bytes, source: str, max_side: int) -> str:
    """Validate, downscale (longer side <= max_side) and encode one image."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()  # decode fully now: a truncated file fails here, not inside the server
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise AttachmentError(
            f"{source} is not a readable image ({exc.__class__.__name__}: {exc})",
            hint="attach a PNG, JPEG, WebP or GIF file; re-export the image if it is damaged",
        ) from None
    fmt = img.format or "PNG"
    resized = max(img.size) > max_side
    if resized:
        img.thumbnail((max_side, max_side))
    if resized or fmt not in _FORMATS_KEPT:
        # Re-encode: PNG keeps transparency and palette images, JPEG keeps photos small.
        out = io.BytesIO()
        if fmt == "JPEG" and img.mode in ("RGB", "L"):
            img.save(out, format="JPEG", quality=90)
        else:
            fmt = "PNG"
            img.save(out, format="PNG")
        data = out.getvalue()
    return f"data:{_FORMATS_KEPT[fmt]};base64,{base64.b64encode(data).decode('ascii')}"


def image_to_data_uri(source: str | Path, *, max_side: int, timeout: float = 30.0) -> str:
    text = str(source)
    if text.startswith("data:image/"):
        header, _, payload = text.partition(",")
        try:
            data = base64.b64decode(payload, validate=True)
        except ValueError:
            raise AttachmentError("the image data URI is not valid base64") from None
    elif text.startswith(("http://", "https://")):
        data = fetch_bytes(text, timeout)
    else:
        path = Path(text).expanduser()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise AttachmentError(f"image {path} does not exist") from None
        except IsADirectoryError:
            raise AttachmentError(f"{path} is a folder, not an image") from None
        except OSError as exc:
            raise AttachmentError(f"cannot read {path}: {exc.strerror}") from None
        if not data:
            raise AttachmentError(f"image {path} is empty")
    return image_bytes_to_data_uri(data, text if len(text) < 200 else text[:200] + "...", max_side)


def user_message(text: str, image_uris: list[str]) -> dict:
    """An OpenAI chat message; plain string content when there are no images, so that
    text-only chat templates (which concatenate `content`) keep working."""
    if not image_uris:
        return {"role": "user", "content": text}
    parts: list[dict] = [{"type": "image_url", "image_url": {"url": uri}} for uri in image_uris]
    parts.append({"type": "text", "text": text})
    return {"role": "user", "content": parts}
