-- Checkout claims: a checkout removes from the cart exactly what it ordered (issue 11).
--
-- `since` is the stamp of a cart line: the id of the add that created it or of the last set,
-- made by the application. Adding to a line keeps it, so a checkout tells what was added to a
-- line after it read the line (stays in the cart) from a line replaced meanwhile (stands as it is).
-- NULL on lines written before this migration: they compare equal to a NULL held stamp.
ALTER TABLE cart_items ADD COLUMN since uuid;

-- The lines a checkout holds, by its Idempotency-Key: at most one claim per cart. Its settle
-- subtracts the held quantities (arrays of one length, by product) and deletes the claim.
CREATE TABLE cart_claims (
    user_id          uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    idempotency_key  text NOT NULL,
    since            timestamptz NOT NULL,
    products         uuid[] NOT NULL,
    quantities       integer[] NOT NULL,
    stamps           uuid[] NOT NULL
);
