-- What a search costs when its total must be counted (first request, or after any change to the lists).
SELECT (SELECT CAST(COALESCE(SUM(changes), 0) AS BIGINT) FROM "list_counts") AS "version", (SELECT COUNT(*) FROM "lists" WHERE "lists"."name_folded" LIKE '%cobalt%' ESCAPE '!') AS "total";
