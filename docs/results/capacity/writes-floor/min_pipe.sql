\set u random(1, 4000)
\startpipeline
BEGIN;
SELECT 1 FROM users WHERE id = ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid FOR NO KEY UPDATE;
COMMIT;
\endpipeline
