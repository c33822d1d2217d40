"""The `orders` plugin: order status, items, shipping and tracking from an SQLite database,
revealed only to a customer who gives the order number *and* the email address on it.

    [plugins.orders]
    database = ""            # your orders database; empty: a demo database with sample orders
    max_attempts = 3         # failed identity checks per conversation before lookups stop

The database is only ever read (opened `mode=ro`). With `database` empty, a demo database is
created from the bundled schema and sample data (data/orders_schema.sql, data/orders_sample.sql)
in the plugin's data folder on first use, built in a temporary file and linked into place so a
crash or two processes starting at once never leave half of it. Identity checks and their limits
are in identity.py; every query is in `OrderBook`, the one class to adapt to another schema.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import PluginError
from assistant.plugin_api import Plugin, ToolContext, tool

from .identity import (
    REFUSAL,
    AttemptLog,
    Identity,
    locked_out_message,
    new_fallback_key,
    normalize_email,
    normalize_order_id,
    remember_identity,
    session_key,
)
from .storage import connect, create_database_once, resolve_path

DATA = Path(__file__).parent / "data"
PROMPTS = Path(__file__).parent / "prompts"
SCHEMA_SQL = DATA / "orders_schema.sql"
SAMPLE_SQL = DATA / "orders_sample.sql"
DAY_S = 86400.0

STATUS_MEANING = {
    "pending": "Order received; waiting for the payment to be confirmed.",
    "processing": "Paid; being prepared in the warehouse.",
    "packed": "Packed; waiting for the carrier to collect it.",
    "shipped": "On its way with the carrier.",
    "delivered": "Delivered.",
    "cancelled": "Cancelled; nothing was or will be shipped.",
    "returned": "Returned to us.",
}


class OrdersSettings(BaseModel):
    """The [plugins.orders] table of config.toml."""

    model_config = ConfigDict(extra="forbid")

    database: str = Field(
        "", description="Path of the orders SQLite database (read only). Empty: a demo database in the data folder."
    )
    sample_data: bool = Field(
        True, description="With `database` empty, create the demo database with sample orders on first use."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Failed identity checks allowed per conversation; then lookups stop."
    )
    max_attempts_per_order: int = Field(
        10, ge=0, le=1000, description="Failed checks allowed per order number per 24 hours, over all conversations (0: no limit)."
    )
    return_days: int = Field(30, ge=0, le=365, description="Days after delivery during which an order can be returned.")


def _day(ts: str | None) -> str | None:
    return ts[:10] if ts else None


def _minute(ts: str) -> str:
    return ts[:16]


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


class OrderBook:
    """Every query the plugin makes, against the schema in data/orders_schema.sql.
    Adapting the plugin to another database means changing this class only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rows(self, sql: str, *args) -> list[dict]:
        conn = connect(self.path, read_only=True)
        try:
            return [dict(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()

    def owner_email(self, order_id: str) -> str | None:
        rows = self._rows("SELECT c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", order_id)
        return rows[0]["email"] if rows else None

    def order(self, order_id: str) -> dict:
        return self._rows(
            "SELECT o.*, c.name AS customer_name, c.email AS customer_email FROM orders o"
            " JOIN customers c ON c.id = o.customer_id WHERE o.id = ?",
            order_id,
        )[0]

    def items(self, order_id: str) -> list[dict]:
        return self._rows("SELECT sku, name, quantity, unit_price_cents FROM order_items WHERE order_id = ? ORDER BY line",
                          order_id)

    def shipments(self, order_id: str) -> list[dict]:
        return self._rows(
            "SELECT s.*, k.name AS carrier_name, k.tracking_url FROM shipments s JOIN carriers k ON k.code = s.carrier"
            " WHERE s.order_id = ? ORDER BY s.id",
            order_id,
        )

    def events(self, shipment_id: int) -> list[dict]:
        return self._rows("SELECT at, location, description FROM shipment_events WHERE shipment_id = ? ORDER BY at",
                          shipment_id)

    def refunds(self, order_id: str) -> list[dict]:
        return self._rows("SELECT * FROM refunds WHERE order_id = ? ORDER BY created_at", order_id)


def build_sample_database(conn) -> None:
    conn.executescript(SCHEMA_SQL.read_text(encoding="utf-8"))
    conn.executescript(SAMPLE_SQL.read_text(encoding="utf-8"))


class Orders(Plugin):
    name = "orders"
    opt_in = True  # the customer-service pack: [plugins] enabled = ["orders", "faq", "tickets", "handoff"]
    description = "Order status, items, shipping and tracking for customers who prove who they are"
    Settings = OrdersSettings
    prompts_dir = PROMPTS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._fallback = new_fallback_key()  # counts attempts when sessions are off

    async def setup(self) -> None:
        s = self.settings
        path = resolve_path(s.database, self.data_dir / "orders.sqlite")
        if not path.exists():
            if s.database or not s.sample_data:
                raise PluginError(
                    f"the orders database {path} does not exist",
                    hint="set [plugins.orders] database to your orders database, or leave it empty for the demo data",
                )
            create_database_once(path, build_sample_database)
        self.book = OrderBook(path)
        self.attempts = AttemptLog(self.data_dir / "identity-checks.sqlite")

    # --- identity ---------------------------------------------------------------------------

    def _verify(self, order_id: str, email: str, ctx: ToolContext) -> tuple[str | None, dict | None]:
        """(order id, None) when the pair matches; (None, refusal) otherwise. Malformed input
        raises ValueError and is not counted: it reveals nothing and is usually a typo."""
        oid, mail = normalize_order_id(order_id), normalize_email(email)
        s, key = self.settings, session_key(ctx, self._fallback)
        failures = self.attempts.failures(key)
        if failures >= s.max_attempts:
            return None, {"verified": False, "locked": True, "message": locked_out_message(s.max_attempts)}
        if s.max_attempts_per_order and self.attempts.subject_failures(oid, DAY_S) >= s.max_attempts_per_order:
            # Any string can be locked this way, so being locked says nothing about the order existing.
            return None, {"verified": False, "locked": True, "message": (
                "This order number is temporarily locked after too many failed identity checks. Do not retry; "
                "offer to hand the conversation to a human agent (the handoff_request tool).")}
        owner = self.book.owner_email(oid)
        # Compared in constant time, and against a dummy for unknown orders: the same work either way.
        ok = hmac.compare_digest((owner or "\x00unknown").casefold().encode(), mail.encode()) and owner is not None
        self.attempts.record(key, oid, mail, ok)
        if ok:
            remember_identity(ctx, Identity(mail, oid))
            return oid, None
        left = s.max_attempts - failures - 1
        message = REFUSAL + (f" {left} attempt(s) left." if left else " " + locked_out_message(s.max_attempts))
        return None, {"verified": False, "attempts_left": left, "message": message}

    # --- tools ------------------------------------------------------------------------------

    @tool
    def lookup(self, order_id: str, email: str, ctx: ToolContext, tracking: bool = False) -> dict:
        """An order's status, items, delivery and return window. Nothing is shown unless the order
        number and the email address on the order both match.

        Args:
            order_id: The order number, e.g. "A1001".
            email: The customer's email address.
            tracking: Also list every tracking event.
        """
        oid, refusal = self._verify(order_id, email, ctx)
        if refusal:
            return refusal
        order = self.book.order(oid)
        result = {
            "verified": True,
            "order_id": oid,
            "customer_first_name": order["customer_name"].split()[0],
            "placed": _day(order["placed_at"]),
            "status": order["status"],
            "status_meaning": STATUS_MEANING.get(order["status"], order["status"]),
            "items": [
                {"name": i["name"], "quantity": i["quantity"], "price": _money(i["unit_price_cents"], order["currency"])}
                for i in self.book.items(oid)
            ],
            "total": _money(order["total_cents"], order["currency"]),
            # Never the street: enough to recognise the address, not to learn it.
            "ship_to": f"{order['ship_to_name'][:1]}. {order['ship_to_name'].split()[-1]}, "
                       f"{order['ship_to_postcode']} {order['ship_to_city']}, {order['ship_to_country']}",
        }
        shipments = [self._shipment(s, latest_only=not tracking) for s in self.book.shipments(oid)]
        if shipments:
            result["shipments"] = shipments
        refunds = [
            {"amount": _money(r["amount_cents"], order["currency"]), "status": r["status"], "reason": r["reason"],
             "issued": _day(r["issued_at"])}
            for r in self.book.refunds(oid)
        ]
        if refunds:
            result["refunds"] = refunds
        returns = self._return_window(order["status"], [s.get("delivered") for s in shipments])
        if returns:
            result["returns"] = returns
        return result

    # --- helpers ----------------------------------------------------------------------------

    def _shipment(self, s: dict, *, latest_only: bool) -> dict:
        out = {
            "carrier": s["carrier_name"],
            "tracking_number": s["tracking_number"],
            "tracking_url": s["tracking_url"].replace("{tracking}", s["tracking_number"]),
            "shipped": _day(s["shipped_at"]),
        }
        if s["delivered_at"]:
            out["delivered"] = _day(s["delivered_at"])
        elif s["estimated_delivery"]:
            out["estimated_delivery"] = s["estimated_delivery"]
        events = [f"{_minute(e['at'])} {e['location']}: {e['description']}" for e in self.book.events(s["id"])]
        if latest_only:
            if events:
                out["latest_event"] = events[-1]
        else:
            out["events"] = events
        return out

    def _return_window(self, status: str, delivered: list[str | None]) -> str | None:
        days = [d for d in delivered if d]
        if status != "delivered" or not days:
            return None
        until = datetime.fromisoformat(max(days)).replace(tzinfo=timezone.utc) + timedelta(days=self.settings.return_days)
        left = (until.date() - datetime.now(timezone.utc).date()).days
        if left >= 0:
            return f"can be returned until {until.date().isoformat()} ({left} days left)"
        return f"the {self.settings.return_days}-day return period ended on {until.date().isoformat()}"
