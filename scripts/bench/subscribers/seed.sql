-- Seeds the subscriber suite in bulk (not through the API), on a database Roster has just migrated:
--   psql -v subscribers=1000000 -v subscriptions=5000000 -f scripts/bench/subscribers/seed.sql
-- Roster's statement triggers stay in place and keep list_subscriber_counts and subscriber_counts exact: each
-- table is filled by one INSERT ... SELECT, so each counter trigger runs once, over the statement's transition table.
--
-- 200 lists (ids 1-200): every 10th private, every 25th archived, every 4th double opt-in; the rest public, active.
-- :subscribers subscribers (ids 1-N): lowercase unique e-mails first.last<id>@<domain>, names from 20 first names
-- and 40 last names (one last name, e.g. `moreau`, is in 2.5% of names and e-mails), small attribs objects; 94%
-- enabled, 4% disabled, 2% blocklisted.
-- :subscriptions subscriptions, uneven: lists 1-4 hold min(90% of the subscribers, 20% of the subscriptions) each
-- (900,000 at the default sizes); lists 5-200 share the rest by 1/rank (list 5 the most, list 200 the least). A
-- list's members are a pseudo-random spread of ids. Statuses: 65% confirmed, 25% unconfirmed, 10% unsubscribed;
-- a blocklisted subscriber's are all unsubscribed (Roster's rule).
\set ON_ERROR_STOP on
SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';
\timing on

INSERT INTO lists (id, uuid, name, name_folded, type, optin, status, tags, description, created_at, updated_at)
SELECT i, gen_random_uuid(), 'Bench list ' || i, 'bench list ' || i,
       CASE WHEN i % 10 = 0 THEN 'private' ELSE 'public' END,
       CASE WHEN i % 4 = 0 THEN 'double' ELSE 'single' END,
       CASE WHEN i % 25 = 0 THEN 'archived' ELSE 'active' END,
       CASE WHEN i <= 4 THEN '["big"]'::jsonb ELSE '[]'::jsonb END,
       'Seeded list ' || i,
       now() - make_interval(hours => 200 - i), now() - make_interval(hours => 200 - i)
FROM generate_series(1, 200) AS i;
INSERT INTO list_tags (list_id, tag) SELECT id, jsonb_array_elements_text(tags) FROM lists;
SELECT setval(pg_get_serial_sequence('lists', 'id'), 200) AS lists_seq \gset

-- Under EXPLAIN ANALYZE, so that the log shows what the counter trigger (and, for subscriptions, each foreign key
-- check) cost: the rows are written all the same.
EXPLAIN (ANALYZE, COSTS OFF)
INSERT INTO subscribers (id, uuid, email, name, name_folded, attribs, status, created_at, updated_at)
SELECT i, gen_random_uuid(),
       f || '.' || l || i || '@' || d,
       initcap(f) || ' ' || initcap(l), f || ' ' || l,
       jsonb_build_object('city', c, 'plan', CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END, 'score', i % 100),
       CASE WHEN i % 50 = 7 THEN 'blocklisted' WHEN i % 25 = 3 THEN 'disabled' ELSE 'enabled' END,
       created, LEAST(now(), created + make_interval(secs => (i * 7919) % 100000))
FROM (
  SELECT i,
         (ARRAY['alice','bruno','chloe','dmitri','elena','farid','grace','hiro','ines','jonas',
                'kavya','liam','maya','nils','olga','pablo','quinn','rosa','sven','tara'])[1 + i % 20] AS f,
         (ARRAY['adler','baker','costa','dubois','eriksen','fischer','garcia','haddad','ivanova','jensen',
                'kowalski','lopez','moreau','nakamura','okafor','petrov','quiroga','rossi','schmidt','tanaka',
                'usman','varga','weber','xu','yilmaz','zhang','almeida','bauer','castillo','dietrich',
                'engel','fontaine','gallo','horvat','ishikawa','janssen','keller','lindqvist','marino','novak'])
           [1 + (i * 31) % 40] AS l,
         (ARRAY['example.com','example.org','example.net','mail.test','post.test'])[1 + (i * 7) % 5] AS d,
         (ARRAY['Lisbon','Pune','Lagos','Osaka','Lyon','Quito','Tartu','Cork','Perth','Bergen'])[1 + (i * 3) % 10] AS c,
         now() - make_interval(secs => (:subscribers - i) * 30 + 100000) AS created
  FROM generate_series(1::bigint, :subscribers::bigint) AS i
) AS s
ORDER BY i;
SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :subscribers) AS subscribers_seq \gset

-- List sizes, then (subscriber, list) pairs: member k of list l is subscriber ((k * p + offset_l) mod N) + 1, which
-- for k < N is a different subscriber for every k (p and N have no common divisor).
EXPLAIN (ANALYZE, COSTS OFF)
INSERT INTO subscriber_lists (subscriber_id, list_id, status, created_at, updated_at)
WITH params AS (
  SELECT :subscribers::bigint AS n, :subscriptions::bigint AS m,
         -- The multiplier: near n / golden ratio (consecutive members land far apart), coprime with n.
         (SELECT c FROM generate_series(floor(:subscribers * 0.618034)::bigint,
                                        floor(:subscribers * 0.618034)::bigint + 1000) AS c
          WHERE gcd(c, :subscribers::bigint) = 1 LIMIT 1) AS p
), big AS (
  SELECT LEAST(floor(n * 0.9), floor(m * 0.2))::bigint AS size FROM params
), small AS (
  SELECT l, GREATEST(1, floor(GREATEST(m - 4 * big.size, 0) / h / (l - 4)))::bigint AS size
  FROM params, big, generate_series(5, 200) AS l,
       (SELECT sum(1.0 / r) AS h FROM generate_series(1, 196) AS r) AS harmonic
), sizes AS (
  SELECT l, LEAST(size, n)::bigint AS size FROM (
    SELECT l, big.size FROM big, generate_series(1, 4) AS l
    UNION ALL
    -- The rounding remainder goes to list 5, so the lists hold :subscriptions in all (when it fits).
    SELECT l, small.size + CASE WHEN l = 5 THEN GREATEST(m - 4 * big.size - (SELECT sum(size) FROM small), 0) ELSE 0 END
    FROM small, big, params
  ) AS s, params
)
SELECT sub, l, CASE WHEN sub % 50 = 7 THEN 'unsubscribed'
                    WHEN (sub * 31 + l * 17) % 20 < 13 THEN 'confirmed'
                    WHEN (sub * 31 + l * 17) % 20 < 18 THEN 'unconfirmed'
                    ELSE 'unsubscribed' END,
       now() - make_interval(secs => (sub * 13 + l) % 1000000), now() - make_interval(secs => (sub * 13 + l) % 1000000)
FROM (
  SELECT ((k * p + l::bigint * 7919 * 104729) % n) + 1 AS sub, l
  FROM sizes, params, generate_series(0, sizes.size - 1) AS k
) AS pairs
ORDER BY sub, l;

\timing off
VACUUM ANALYZE lists;
VACUUM ANALYZE list_tags;
VACUUM ANALYZE subscribers;
VACUUM ANALYZE subscriber_lists;
VACUUM ANALYZE list_subscriber_counts;
VACUUM ANALYZE subscriber_counts;
