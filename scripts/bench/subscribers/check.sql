-- Are the counters exact? Recounts subscriber_lists per (list, status) and subscribers per status, compares each
-- with the sum over its counter's shards, prints every difference, then one summary line:
--   CHECK mismatches=0 subscriptions=N subscribers=M
\set ON_ERROR_STOP on
CREATE TEMP TABLE differences AS
SELECT 'list ' || list_id || ' ' || status AS key, COALESCE(r.n, 0) AS recounted, COALESCE(c.n, 0) AS counters
FROM (SELECT list_id, status, COUNT(*) AS n FROM subscriber_lists GROUP BY 1, 2) AS r
FULL JOIN (SELECT list_id, status, SUM(n) AS n FROM list_subscriber_counts GROUP BY 1, 2 HAVING SUM(n) <> 0) AS c
  USING (list_id, status)
WHERE COALESCE(r.n, 0) <> COALESCE(c.n, 0)
UNION ALL
SELECT 'subscribers ' || status, COALESCE(r.n, 0), COALESCE(c.n, 0)
FROM (SELECT status, COUNT(*) AS n FROM subscribers GROUP BY 1) AS r
FULL JOIN (SELECT status, SUM(n) AS n FROM subscriber_counts GROUP BY 1 HAVING SUM(n) <> 0) AS c USING (status)
WHERE COALESCE(r.n, 0) <> COALESCE(c.n, 0);
SELECT * FROM differences ORDER BY key;
SELECT (SELECT COUNT(*) FROM differences) AS mismatches, (SELECT COUNT(*) FROM subscriber_lists) AS subscriptions,
       (SELECT COUNT(*) FROM subscribers) AS subscribers \gset
\echo CHECK mismatches=:mismatches subscriptions=:subscriptions subscribers=:subscribers
