-- The orders database the `orders` plugin reads (never writes). Adapt it, or point
-- [plugins.orders] database at your own copy with the same tables; the plugin's queries are all
-- in plugins/support/orders.py, class OrderBook, should your schema differ.
-- Times are UTC text 'YYYY-MM-DD HH:MM:SS'; money is in cents.

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name        TEXT NOT NULL,
    phone       TEXT
);

CREATE TABLE orders (
    id                TEXT PRIMARY KEY,          -- the order number customers see, e.g. A1001
    customer_id       INTEGER NOT NULL REFERENCES customers (id),
    placed_at         TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN
                          ('pending', 'processing', 'packed', 'shipped', 'delivered', 'cancelled', 'returned')),
    currency          TEXT NOT NULL DEFAULT 'EUR',
    total_cents       INTEGER NOT NULL CHECK (total_cents >= 0),
    ship_to_name      TEXT NOT NULL,
    ship_to_street    TEXT NOT NULL,
    ship_to_postcode  TEXT NOT NULL,
    ship_to_city      TEXT NOT NULL,
    ship_to_country   TEXT NOT NULL               -- ISO 3166 code
);
CREATE INDEX orders_customer ON orders (customer_id, placed_at);

CREATE TABLE order_items (
    order_id          TEXT NOT NULL REFERENCES orders (id),
    line              INTEGER NOT NULL,
    sku               TEXT NOT NULL,
    name              TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents  INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, line)
);

CREATE TABLE carriers (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    tracking_url  TEXT NOT NULL                  -- with {tracking} where the tracking number goes
);

CREATE TABLE shipments (
    id                  INTEGER PRIMARY KEY,
    order_id            TEXT NOT NULL REFERENCES orders (id),
    carrier             TEXT NOT NULL REFERENCES carriers (code),
    tracking_number     TEXT NOT NULL,
    shipped_at          TEXT,
    estimated_delivery  TEXT,                    -- a date, 'YYYY-MM-DD'
    delivered_at        TEXT
);
CREATE INDEX shipments_order ON shipments (order_id);

CREATE TABLE shipment_events (
    shipment_id  INTEGER NOT NULL REFERENCES shipments (id),
    at           TEXT NOT NULL,
    location     TEXT NOT NULL,
    description  TEXT NOT NULL
);
CREATE INDEX shipment_events_shipment ON shipment_events (shipment_id, at);

CREATE TABLE refunds (
    order_id      TEXT NOT NULL REFERENCES orders (id),
    amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'issued')),
    reason        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    issued_at     TEXT
);
CREATE INDEX refunds_order ON refunds (order_id);
