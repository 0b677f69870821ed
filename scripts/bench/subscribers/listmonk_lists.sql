-- listmonk's GET /api/lists?per_page=20 (cache_slow_queries off, its default): refresh the materialized view of
-- subscriber counts, then query-lists (v6.2). Parameters bound as listmonk binds them for a plain listing; the
-- tag condition is dropped (Roster's tags are JSON, listmonk's an array; with no tag it is TRUE).
REFRESH MATERIALIZED VIEW mat_list_subscriber_stats;
WITH ls AS (
    SELECT COUNT(*) OVER () AS total, lists.* FROM lists WHERE
    CASE
        WHEN 0 > 0 THEN id = 0
        WHEN '' != '' THEN uuid = NULL::UUID
        WHEN '' != '' THEN (TO_TSVECTOR(name) @@ TO_TSQUERY ('') OR name ILIKE '')
        ELSE TRUE
    END
    AND ('' = '' OR type = '')
    AND ('' = '' OR optin = '')
    AND ('' = '' OR status = '')
    AND CASE WHEN TRUE = TRUE THEN TRUE ELSE id = ANY('{}'::INT[]) END
    OFFSET 0 LIMIT (CASE WHEN 20 < 1 THEN NULL ELSE 20 END)
),
statuses AS (
    SELECT
        list_id,
        COALESCE(JSONB_OBJECT_AGG(status, subscriber_count) FILTER (WHERE status IS NOT NULL), '{}') AS subscriber_statuses,
        SUM(subscriber_count) AS subscriber_count
    FROM mat_list_subscriber_stats
    GROUP BY list_id
)
SELECT ls.*, COALESCE(ss.subscriber_statuses, '{}') AS subscriber_statuses, COALESCE(ss.subscriber_count, 0) AS subscriber_count
    FROM ls LEFT JOIN statuses ss ON (ls.id = ss.list_id) ORDER BY created_at desc;
