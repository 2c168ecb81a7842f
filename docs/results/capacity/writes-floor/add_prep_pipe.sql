\set u random(1, 4000)
\set p random(1, 50)
\set a random(1, 1000000000000)
\startpipeline
BEGIN;
SELECT 1 FROM users WHERE id = ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid FOR NO KEY UPDATE;
SELECT product_id, quantity FROM cart_items WHERE user_id = ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid ORDER BY product_id;
\endpipeline
\startpipeline
INSERT INTO cart_items (user_id, product_id, quantity, since) VALUES (('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, ('00000000-0000-0000-0001-' || lpad(:p::text, 12, '0'))::uuid, 1, ('00000000-0000-7000-8000-' || lpad(:a::text, 12, '0'))::uuid) ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity;
WITH expired AS (DELETE FROM cart_adds WHERE user_id = ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid AND add_id < '00000000-0000-7000-8000-000000000000') INSERT INTO cart_adds (user_id, add_id) VALUES (('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, ('00000000-0000-7000-8000-' || lpad(:a::text, 12, '0'))::uuid) ON CONFLICT DO NOTHING;
COMMIT;
\endpipeline
