-- listmonk's GET /api/subscribers?page=:page&per_page=500 (v6.2): the count of every subscriber, the page at
-- OFFSET :offset in id order, then the page's lists (:page_ids).
SELECT COUNT(*) AS total FROM subscribers
    LEFT JOIN subscriber_lists
    ON (
        (CASE WHEN CARDINALITY('{}'::INT[]) > 0 THEN true ELSE false END)
        AND subscriber_lists.subscriber_id = subscribers.id
        AND ('' = '' OR subscriber_lists.status = '')
    )
    WHERE (CARDINALITY('{}'::INT[]) = 0 OR subscriber_lists.list_id = ANY('{}'::INT[]))
    AND (CASE WHEN '' != '' THEN name ~* '' OR email ~* '' ELSE TRUE END)
    AND TRUE;
SELECT subscribers.* FROM subscribers
    LEFT JOIN subscriber_lists
    ON (
        (CASE WHEN CARDINALITY('{}'::INT[]) > 0 THEN true ELSE false END)
        AND subscriber_lists.subscriber_id = subscribers.id
        AND ('' = '' OR subscriber_lists.status = '')
    )
    WHERE (CARDINALITY('{}'::INT[]) = 0 OR subscriber_lists.list_id = ANY('{}'::INT[]))
    AND (CASE WHEN '' != '' THEN name ~* '' OR email ~* '' ELSE TRUE END)
    AND TRUE
    ORDER BY subscribers.id desc OFFSET :offset LIMIT (CASE WHEN 500 < 1 THEN NULL ELSE 500 END);
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
