-- listmonk's POST /api/public/subscription with a new e-mail on lists :u1, :u2 (v6.2): get-list-types,
-- insert-subscriber (one statement), then the subscriber read back (get-subscriber, get-subscriber-lists-lazy);
-- no opt-in mail. On the lm.* copies (listmonk_setup.sql): no counter triggers. Each statement commits alone, as
-- listmonk runs them.
\set r random(1, 1000000000000000)
SELECT id, uuid, type FROM lists WHERE
    (CASE WHEN NULL::INT[] IS NOT NULL THEN id = ANY(NULL::INT[])
          WHEN ARRAY[':u1', ':u2']::UUID[] IS NOT NULL THEN uuid = ANY(ARRAY[':u1', ':u2']::UUID[])
    END);
WITH sub AS (
    INSERT INTO lm.subscribers (uuid, email, name, status, attribs)
    VALUES(gen_random_uuid(), 'lm:run.:client_id.:r@bench.test', 'lm:run.:client_id.:r', 'enabled', 'null')
    RETURNING id, status
),
listIDs AS (
    SELECT id FROM lists WHERE
        (CASE WHEN CARDINALITY('{}'::INT[]) > 0 THEN id=ANY('{}'::INT[])
              ELSE uuid=ANY(ARRAY[':u1', ':u2']::UUID[]) END)
),
subs AS (
    INSERT INTO lm.subscriber_lists (subscriber_id, list_id, status)
    VALUES(
        (SELECT id FROM sub),
        UNNEST(ARRAY(SELECT id FROM listIDs)),
        (CASE WHEN 'enabled'='blocklisted' THEN 'unsubscribed' ELSE 'unconfirmed' END)
    )
    ON CONFLICT (subscriber_id, list_id) DO UPDATE
        SET updated_at=NOW(),
            status=(
                CASE WHEN 'enabled'='blocklisted' OR (SELECT status FROM sub)='blocklisted'
                THEN 'unsubscribed'
                ELSE 'unconfirmed' END
            )
)
SELECT id from sub \gset
SELECT * FROM lm.subscribers WHERE
    CASE
        WHEN :id > 0 THEN id = :id
        WHEN '' != '' THEN uuid = NULL::UUID
        WHEN 'lm:run.:client_id.:r@bench.test' != '' THEN email = 'lm:run.:client_id.:r@bench.test'
    END;
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
    LEFT JOIN lm.subscriber_lists subscriber_lists ON (subscriber_lists.list_id = lists.id)
    WHERE subscriber_lists.subscriber_id = ANY(ARRAY[:id]::INT[])
    GROUP BY subscriber_id
)
SELECT id as subscriber_id,
    COALESCE(s.lists, '[]') AS lists
    FROM (SELECT id FROM UNNEST(ARRAY[:id]::INT[]) AS id) x
    LEFT JOIN subs AS s ON (s.subscriber_id = id)
    ORDER BY ARRAY_POSITION(ARRAY[:id]::INT[], id);
