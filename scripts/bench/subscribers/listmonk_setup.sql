-- What upstream listmonk (v6.2) needs to answer the same questions, built over Roster's tables in the bench
-- database (listmonk's column names are the same; its enums are Roster's strings, so `::subscription_status` casts
-- are dropped in the scenario files).
\set ON_ERROR_STOP on

-- listmonk's `mat_list_subscriber_stats` (schema.sql / migration v5.0.0), verbatim: one row per (list,
-- subscription status) and a list_id = 0 row with the number of subscribers. Every full `GET /api/lists` runs
-- `REFRESH MATERIALIZED VIEW mat_list_subscriber_stats` first (the default, app.cache_slow_queries = false).
DROP MATERIALIZED VIEW IF EXISTS mat_list_subscriber_stats;
CREATE MATERIALIZED VIEW mat_list_subscriber_stats AS
  SELECT NOW() AS updated_at, lists.id AS list_id, subscriber_lists.status,
         COUNT(subscriber_lists.status) AS subscriber_count
  FROM lists LEFT JOIN subscriber_lists ON (subscriber_lists.list_id = lists.id)
  GROUP BY lists.id, subscriber_lists.status
  UNION ALL
  SELECT NOW() AS updated_at, 0 AS list_id, NULL AS status, COUNT(id) AS subscriber_count FROM subscribers;
CREATE UNIQUE INDEX mat_list_subscriber_stats_idx ON mat_list_subscriber_stats (list_id, status);

-- listmonk's writes run against copies of the two tables (Roster's columns and indexes, listmonk's foreign keys,
-- no counter triggers: listmonk keeps no counts), so they neither pay for nor disturb Roster's counters. The
-- copies start with the subscribers the bulk add names (ids 1..:bulk) and no subscriptions, which makes listmonk's
-- side an upper bound (smaller indexes).
DROP SCHEMA IF EXISTS lm CASCADE;
CREATE SCHEMA lm;
CREATE TABLE lm.subscribers (LIKE public.subscribers INCLUDING ALL);
CREATE TABLE lm.subscriber_lists (LIKE public.subscriber_lists INCLUDING ALL,
  FOREIGN KEY (subscriber_id) REFERENCES lm.subscribers (id) ON DELETE CASCADE,
  FOREIGN KEY (list_id) REFERENCES public.lists (id) ON DELETE CASCADE);
-- listmonk's defaults (schema.sql) for the columns its statements leave out; name_folded is Roster's alone.
ALTER TABLE lm.subscribers ALTER COLUMN name_folded SET DEFAULT '',
  ALTER COLUMN attribs SET DEFAULT '{}', ALTER COLUMN status SET DEFAULT 'enabled',
  ALTER COLUMN created_at SET DEFAULT NOW(), ALTER COLUMN updated_at SET DEFAULT NOW();
ALTER TABLE lm.subscriber_lists ALTER COLUMN status SET DEFAULT 'unconfirmed',
  ALTER COLUMN created_at SET DEFAULT NOW(), ALTER COLUMN updated_at SET DEFAULT NOW();
INSERT INTO lm.subscribers SELECT * FROM public.subscribers WHERE id <= :bulk;
-- The copy has its own identity sequence: new rows take ids after every copied one.
SELECT format('ALTER TABLE lm.subscribers ALTER COLUMN id RESTART WITH %s',
              COALESCE((SELECT max(id) FROM public.subscribers), 0) + 1) \gexec
VACUUM ANALYZE lm.subscribers;
VACUUM ANALYZE lm.subscriber_lists;
VACUUM ANALYZE mat_list_subscriber_stats;
