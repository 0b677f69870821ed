-- listmonk's GET /api/subscribers?list_id=:list&per_page=20 (v6.2): query-subscribers-count, query-subscribers
-- (`%query%` = TRUE, `%order%` = subscribers.id desc), then get-subscriber-lists-lazy for the page's ids
-- (:page_ids). Enum casts dropped; subscriber_lists.meta (absent in Roster) read as {}.
SELECT COUNT(*) AS total FROM subscribers
    LEFT JOIN subscriber_lists
    ON (
        (CASE WHEN CARDINALITY(ARRAY[:list]::INT[]) > 0 THEN true ELSE false END)
        AND subscriber_lists.subscriber_id = subscribers.id
        AND ('' = '' OR subscriber_lists.status = '')
    )
    WHERE (CARDINALITY(ARRAY[:list]::INT[]) = 0 OR subscriber_lists.list_id = ANY(ARRAY[:list]::INT[]))
    AND (CASE WHEN '' != '' THEN name ~* '' OR email ~* '' ELSE TRUE END)
    AND TRUE;
SELECT subscribers.* FROM subscribers
    LEFT JOIN subscriber_lists
    ON (
        (CASE WHEN CARDINALITY(ARRAY[:list]::INT[]) > 0 THEN true ELSE false END)
        AND subscriber_lists.subscriber_id = subscribers.id
        AND ('' = '' OR subscriber_lists.status = '')
    )
    WHERE (CARDINALITY(ARRAY[:list]::INT[]) = 0 OR subscriber_lists.list_id = ANY(ARRAY[:list]::INT[]))
    AND (CASE WHEN '' != '' THEN name ~* '' OR email ~* '' ELSE TRUE END)
    AND TRUE
    ORDER BY subscribers.id desc OFFSET 0 LIMIT (CASE WHEN 20 < 1 THEN NULL ELSE 20 END);
WITH subs AS (
    SELECT subscriber_id, JSON_AGG(
        ROW_TO_JSON(
            (SELECT l FROM (
                SELECT
                    subscriber_lists.status AS subscription_status,
                    subscriber_lists.created_at AS subscription_created_at,
                    subscriber_lists.updated_at AS subscription_updated_at,
                    '{}'::jsonb AS subscription_meta,
                    lists.*
            ) l)
        )
    ) AS lists FROM lists
    LEFT JOIN subscriber_lists ON (subscriber_lists.list_id = lists.id)
    WHERE subscriber_lists.subscriber_id = ANY(ARRAY[:page_ids]::INT[])
    GROUP BY subscriber_id
)
SELECT id as subscriber_id,
    COALESCE(s.lists, '[]') AS lists
    FROM (SELECT id FROM UNNEST(ARRAY[:page_ids]::INT[]) AS id) x
    LEFT JOIN subs AS s ON (s.subscriber_id = id)
    ORDER BY ARRAY_POSITION(ARRAY[:page_ids]::INT[], id);
