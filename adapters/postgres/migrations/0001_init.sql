-- Initial schema of the shop.
--
-- Rules for every migration (pgpool-II native replication runs each statement on every backend):
-- * No defaults or expressions that differ per backend: no now(), random(), gen_random_uuid(),
--   serial or identity. Ids and timestamps come from the application as parameters.
-- * One statement per `;`-terminated line group; the runner sends them one by one, because
--   pgpool sends a multi-statement query to the main node only.
-- * No `;` inside a statement (no string literals or function bodies containing one).

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL,
    token_hash  bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    created_at  timestamptz NOT NULL
);

CREATE TABLE products (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL,
    category     text NOT NULL,
    price_cents  bigint NOT NULL CHECK (price_cents >= 0),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX products_category_id ON products (category, id);

-- No foreign key to products: a cart keeps the line of a deleted product and checkout refuses it
-- (409 product_unavailable), as on every store (carts in Redis cannot cascade). Hence no index on
-- product_id either: nothing looks cart lines up by product.
CREATE TABLE cart_items (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id  uuid NOT NULL,
    quantity    integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    PRIMARY KEY (user_id, product_id)
);

-- The recent adds to carts, by the id the adapter gives each call: a retry of an add whose COMMIT
-- got no answer finds its id here and does not add twice. Ids are UUID v7 (time-ordered); each
-- add removes the user's ids older than a bound the application passes.
CREATE TABLE cart_adds (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    add_id   uuid NOT NULL,
    PRIMARY KEY (user_id, add_id)
);

-- No foreign key to users: orders are the shop's records and outlive a deleted user.
CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL,
    idempotency_key  text NOT NULL,
    status           text NOT NULL CHECK (status IN ('created', 'paid', 'shipped', 'cancelled')),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT orders_user_key UNIQUE (user_id, idempotency_key)
);

-- A user's orders newest first: ids are UUID v7 (time-ordered).
CREATE INDEX orders_user_id ON orders (user_id, id DESC);

-- No foreign key to products: a line is a snapshot (name, price) that outlives the product.
CREATE TABLE order_lines (
    order_id          uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id        uuid NOT NULL,
    name              text NOT NULL,
    unit_price_cents  bigint NOT NULL CHECK (unit_price_cents >= 0),
    quantity          integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    PRIMARY KEY (order_id, product_id)
);
