"""A real MCP server for the tests, written with the official SDK's MCPServer (FastMCP in v1).

    python tests/mcp_servers/shop_server.py                  # stdio
    python tests/mcp_servers/shop_server.py --http PORT      # streamable HTTP on 127.0.0.1:PORT
    python tests/mcp_servers/shop_server.py --crash-on-start # says why on stderr and exits 3
    python tests/mcp_servers/shop_server.py --hang           # never answers the handshake

Tools: stock_level (read-only), reserve_item (side effects: appends to $SHOP_LOG),
swatch (returns a PNG), crash (the process exits mid-call), boom (the tool raises).
"""

from __future__ import annotations

import io
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.utilities.types import Image
from mcp.types import ToolAnnotations

STOCK = {"dripper": 12, "kettle": 0, "grinder": 3}

server = MCPServer("shop")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def stock_level(item: str) -> str:
    """How many of an item are in the warehouse.

    Args:
        item: The product name, e.g. "dripper".
    """
    if item.lower() not in STOCK:
        return f"unknown item {item!r}; known: {', '.join(STOCK)}"
    return f"{item}: {STOCK[item.lower()]} in stock (warehouse code {os.environ.get('SHOP_CODE', 'none')})"


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
def reserve_item(item: str, quantity: int = 1) -> str:
    """Reserve items for a customer (changes the stock).

    Args:
        item: The product name.
        quantity: How many to reserve.
    """
    with open(os.environ.get("SHOP_LOG", os.devnull), "a") as fh:
        fh.write(f"reserved {quantity} {item}\n")
    return f"reserved {quantity} x {item}"


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def swatch(colour: str = "red") -> Image:
    """A 16x16 colour swatch as a PNG image.

    Args:
        colour: A colour name Pillow knows.
    """
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("RGB", (16, 16), colour).save(buf, "PNG")
    return Image(data=buf.getvalue(), format="png")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def crash() -> str:
    """Exit the server process in the middle of the call."""
    print("shop server: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(7)


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def boom() -> str:
    """A tool that raises."""
    raise RuntimeError("the stock database is locked")


if __name__ == "__main__":
    if "--crash-on-start" in sys.argv:
        print("shop server: cannot open stock.db: permission denied", file=sys.stderr, flush=True)
        sys.exit(3)
    if "--hang" in sys.argv:
        print("shop server: waiting forever", file=sys.stderr, flush=True)
        time.sleep(3600)
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
