-- Sample data for the orders database: fictional customers (example.* domains) and orders in
-- every state. Dates are relative to the moment the database is created, so "delivered 5 days
-- ago" and "arrives in 2 days" stay true for a fresh demo database.

INSERT INTO customers (id, email, name, phone) VALUES
    (1, 'ana.lima@example.com',     'Ana Lima',      '+49 30 5550 1001'),
    (2, 'ben.okafor@example.org',   'Ben Okafor',    '+44 20 5550 1002'),
    (3, 'chloe.martin@example.net', 'Chloé Martin',  '+33 1 5550 1003'),
    (4, 'dmitri.volkov@example.com','Dmitri Volkov', NULL),
    (5, 'emma.schulz@example.de',   'Emma Schulz',   '+49 89 5550 1005');

INSERT INTO carriers (code, name, tracking_url) VALUES
    ('parcelnet', 'ParcelNet', 'https://track.parcelnet.example/{tracking}'),
    ('swiftpost', 'SwiftPost', 'https://swiftpost.example/track?id={tracking}');

INSERT INTO orders (id, customer_id, placed_at, status, currency, total_cents,
                    ship_to_name, ship_to_street, ship_to_postcode, ship_to_city, ship_to_country) VALUES
    ('A1001', 1, datetime('now', '-9 days'),  'delivered',  'EUR',  5450, 'Ana Lima',      'Torstraße 12',        '10115', 'Berlin',    'DE'),
    ('A1002', 1, datetime('now', '-3 days'),  'shipped',    'EUR',  8900, 'Ana Lima',      'Torstraße 12',        '10115', 'Berlin',    'DE'),
    ('A1003', 2, datetime('now', '-1 days'),  'processing', 'GBP',  3200, 'Ben Okafor',    '14 Elm Row',          'EH7 4AA', 'Edinburgh', 'GB'),
    ('A1004', 2, datetime('now', '-50 days'), 'delivered',  'GBP', 12900, 'Ben Okafor',    '14 Elm Row',          'EH7 4AA', 'Edinburgh', 'GB'),
    ('A1005', 3, datetime('now', '-12 days'), 'cancelled',  'EUR',  2400, 'Chloé Martin',  '8 rue des Lilas',     '75019', 'Paris',     'FR'),
    ('A1006', 4, datetime('now', '-2 days'),  'packed',     'EUR',  6750, 'Dmitri Volkov', 'Keizersgracht 100',   '1015 CX', 'Amsterdam', 'NL'),
    ('A1007', 5, datetime('now', '-6 days'),  'delivered',  'EUR',  7990, 'Emma Schulz',   'Leopoldstraße 40',    '80802', 'München',   'DE'),
    ('A1008', 5, datetime('now', '-40 days'), 'returned',   'EUR',  4500, 'Emma Schulz',   'Leopoldstraße 40',    '80802', 'München',   'DE'),
    ('A1009', 3, datetime('now', '-7 days'),  'shipped',    'EUR', 15800, 'Chloé Martin',  '8 rue des Lilas',     '75019', 'Paris',     'FR'),
    ('A1010', 4, datetime('now', '-20 minutes'), 'pending', 'EUR',  1990, 'Dmitri Volkov', 'Keizersgracht 100',   '1015 CX', 'Amsterdam', 'NL');

INSERT INTO order_items (order_id, line, sku, name, quantity, unit_price_cents) VALUES
    ('A1001', 1, 'POUR-CER-WH', 'Ceramic pour-over dripper, white', 1, 2950),
    ('A1001', 2, 'FILT-100',    'Paper filters (pack of 100)',      2,  650),
    ('A1001', 3, 'SHIP-STD',    'Standard shipping',                1, 1200),
    ('A1002', 1, 'GRIND-HND',   'Hand grinder, steel burrs',        1, 8900),
    ('A1003', 1, 'BEAN-ETH-1K', 'Ethiopia Guji beans, 1 kg',        1, 3200),
    ('A1004', 1, 'KETL-GOOSE',  'Gooseneck kettle, 1 l',            1, 6900),
    ('A1004', 2, 'SCALE-01',    'Brewing scale with timer',         1, 6000),
    ('A1005', 1, 'MUG-SET-2',   'Stoneware mugs (set of 2)',        1, 2400),
    ('A1006', 1, 'PRESS-FR-8',  'French press, 8 cups',             1, 4500),
    ('A1006', 2, 'BEAN-COL-500','Colombia Huila beans, 500 g',      1, 2250),
    ('A1007', 1, 'TEAPOT-GL',   'Glass teapot with infuser, 1.2 l', 1, 5990),
    ('A1007', 2, 'CUP-GL-2',    'Double-wall glass cups (set of 2)',1, 2000),
    ('A1008', 1, 'AERO-GO',     'Travel coffee press',              1, 4500),
    ('A1009', 1, 'ESPR-MAN',    'Manual espresso maker',            1, 14900),
    ('A1009', 2, 'TAMP-58',     'Tamper, 58 mm',                    1,   900),
    ('A1010', 1, 'FILT-100',    'Paper filters (pack of 100)',      1, 1990);

INSERT INTO shipments (id, order_id, carrier, tracking_number, shipped_at, estimated_delivery, delivered_at) VALUES
    (1, 'A1001', 'parcelnet', 'PN40019921DE', datetime('now', '-8 days'),  date('now', '-6 days'), datetime('now', '-6 days', '+3 hours')),
    (2, 'A1002', 'parcelnet', 'PN40020457DE', datetime('now', '-2 days'),  date('now', '+2 days'), NULL),
    (3, 'A1004', 'swiftpost', 'SP7781002GB',  datetime('now', '-49 days'), date('now', '-46 days'), datetime('now', '-46 days')),
    (4, 'A1007', 'swiftpost', 'SP7790315DE',  datetime('now', '-5 days'),  date('now', '-3 days'), datetime('now', '-3 days', '+2 hours')),
    (5, 'A1008', 'parcelnet', 'PN39911203DE', datetime('now', '-39 days'), date('now', '-37 days'), datetime('now', '-37 days')),
    (6, 'A1009', 'swiftpost', 'SP7793320FR',  datetime('now', '-6 days'),  date('now', '-3 days'), NULL);

INSERT INTO shipment_events (shipment_id, at, location, description) VALUES
    (1, datetime('now', '-8 days'),                'Hamburg',   'Handed to ParcelNet'),
    (1, datetime('now', '-7 days'),                'Berlin',    'Arrived at the delivery depot'),
    (1, datetime('now', '-6 days', '+3 hours'),    'Berlin',    'Delivered: handed to the recipient'),
    (2, datetime('now', '-2 days'),                'Hamburg',   'Handed to ParcelNet'),
    (2, datetime('now', '-1 days'),                'Hannover',  'In transit to the delivery depot'),
    (3, datetime('now', '-49 days'),               'Glasgow',   'Handed to SwiftPost'),
    (3, datetime('now', '-46 days'),               'Edinburgh', 'Delivered: left at the front door'),
    (4, datetime('now', '-5 days'),                'Hamburg',   'Handed to SwiftPost'),
    (4, datetime('now', '-4 days'),                'Nürnberg',  'In transit'),
    (4, datetime('now', '-3 days', '+2 hours'),    'München',   'Delivered: handed to the recipient'),
    (5, datetime('now', '-39 days'),               'Hamburg',   'Handed to ParcelNet'),
    (5, datetime('now', '-37 days'),               'München',   'Delivered: handed to the recipient'),
    (6, datetime('now', '-6 days'),                'Hamburg',   'Handed to SwiftPost'),
    (6, datetime('now', '-4 days'),                'Paris',     'Arrived at the delivery depot'),
    (6, datetime('now', '-3 days'),                'Paris',     'Delivery attempt failed: nobody at the address'),
    (6, datetime('now', '-2 days'),                'Paris',     'Held at the depot for collection until ' || date('now', '+5 days'));

INSERT INTO refunds (order_id, amount_cents, status, reason, created_at, issued_at) VALUES
    ('A1005', 2400, 'issued',  'Order cancelled before dispatch', datetime('now', '-12 days', '+2 hours'), datetime('now', '-11 days')),
    ('A1008', 4500, 'pending', 'Return received',                 datetime('now', '-2 days'), NULL);
