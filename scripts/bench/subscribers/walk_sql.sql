-- The walk of walk.py on PostgreSQL alone, one session, nothing sent to a client: every :step-th page of
-- :per_page subscribers by `updated_at` DESC (every page when :step is 1), with Roster's statements (the page with
-- the total from the counters, the page's subscriptions, their lists) and with listmonk's (v6.2: the count of
-- every subscriber, the page, get-subscriber-lists-lazy). Prints each walk's time, and that time scaled to every
-- page. Run with psql -v total=N -v per_page=500 -v step=S.
\set ON_ERROR_STOP on
CREATE FUNCTION pg_temp.walk_roster(total bigint, per_page int, step int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE ids bigint[]; list_ids bigint[]; pages int := 0;
BEGIN
  FOR p IN 0 .. GREATEST(ceil(total::numeric / per_page)::int - 1, 0) BY step LOOP
    EXECUTE format('SELECT array_agg(id) FROM (SELECT "page".*, (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM "subscriber_counts") AS "alongside" FROM (SELECT "subscribers"."id", "subscribers"."uuid", "subscribers"."email", "subscribers"."name", "subscribers"."name_folded", "subscribers"."attribs", "subscribers"."status", "subscribers"."created_at", "subscribers"."updated_at" FROM "subscribers" WHERE TRUE ORDER BY "subscribers"."updated_at" DESC, "subscribers"."id" DESC LIMIT %s OFFSET %s) AS "page" ORDER BY "page"."updated_at" DESC, "page"."id" DESC) AS walked', per_page, p * per_page) INTO ids;
    EXECUTE 'SELECT array_agg(DISTINCT list_id) FROM (SELECT "subscriber_lists"."subscriber_id", "subscriber_lists"."list_id", "subscriber_lists"."status", "subscriber_lists"."created_at", "subscriber_lists"."updated_at" FROM "subscriber_lists" WHERE "subscriber_lists"."subscriber_id" = ANY($1) ORDER BY "subscriber_lists"."list_id" ASC) AS subscriptions' INTO list_ids USING ids;
    PERFORM * FROM lists WHERE id = ANY(list_ids);
    pages := pages + 1;
  END LOOP;
  RETURN pages;
END $$;
CREATE FUNCTION pg_temp.walk_listmonk(total bigint, per_page int, step int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE ids int[]; pages int := 0;
BEGIN
  FOR p IN 0 .. GREATEST(ceil(total::numeric / per_page)::int - 1, 0) BY step LOOP
    PERFORM COUNT(*) AS total FROM subscribers LEFT JOIN subscriber_lists ON (false AND subscriber_lists.subscriber_id = subscribers.id) WHERE TRUE;
    EXECUTE format('SELECT array_agg(id) FROM (SELECT subscribers.* FROM subscribers LEFT JOIN subscriber_lists ON ((CASE WHEN CARDINALITY(''{}''::INT[]) > 0 THEN true ELSE false END) AND subscriber_lists.subscriber_id = subscribers.id AND ('''' = '''' OR subscriber_lists.status = '''')) WHERE (CARDINALITY(''{}''::INT[]) = 0 OR subscriber_lists.list_id = ANY(''{}''::INT[])) AND TRUE AND TRUE ORDER BY subscribers.updated_at desc OFFSET %s LIMIT %s) AS walked', p * per_page, per_page) INTO ids;
    PERFORM COALESCE(s.lists, '[]') FROM (SELECT id FROM UNNEST(ids) AS id) x LEFT JOIN (
      SELECT subscriber_id, JSON_AGG(ROW_TO_JSON((SELECT l FROM (SELECT subscriber_lists.status AS subscription_status, subscriber_lists.created_at AS subscription_created_at, subscriber_lists.updated_at AS subscription_updated_at, '{}'::jsonb AS subscription_meta, lists.*) l))) AS lists
      FROM lists LEFT JOIN subscriber_lists ON (subscriber_lists.list_id = lists.id) WHERE subscriber_lists.subscriber_id = ANY(ids) GROUP BY subscriber_id
    ) AS s ON (s.subscriber_id = id) ORDER BY ARRAY_POSITION(ids, id);
    pages := pages + 1;
  END LOOP;
  RETURN pages;
END $$;
SELECT clock_timestamp() AS t0 \gset
SELECT pg_temp.walk_roster(:total, :per_page, :step) AS roster_pages \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS roster_s, clock_timestamp() AS t1 \gset
SELECT pg_temp.walk_listmonk(:total, :per_page, :step) AS listmonk_pages \gset
SELECT extract(epoch FROM clock_timestamp() - :'t1') AS listmonk_s \gset
\echo WALK roster_pages=:roster_pages roster_s=:roster_s listmonk_pages=:listmonk_pages listmonk_s=:listmonk_s step=:step
