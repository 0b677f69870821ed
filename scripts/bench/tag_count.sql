-- What a tag filter costs when its total must be counted (first request, or after any change to the lists).
SELECT (SELECT CAST(COALESCE(SUM(changes), 0) AS BIGINT) FROM "list_counts") AS "version", (SELECT COUNT(*) FROM (SELECT "list_id" FROM "list_tags" WHERE "list_tags"."tag" IN ('vip') GROUP BY "list_id" HAVING (COUNT(*)) = 1) AS "carrying_all") AS "total";
