-- GET /api/lists?per_page=20: the page with the number of lists (from the counters) in one statement, then the
-- page's subscriber counts by status (list_subscriber_counts), on another pooled connection. :page_lists = the
-- page's list ids.
SELECT "page".*, (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM "list_counts") AS "alongside", (SELECT CAST(COALESCE(SUM(changes), 0) AS BIGINT) FROM "list_counts") AS "alongside_1" FROM (SELECT "lists"."id", "lists"."uuid", "lists"."name", "lists"."name_folded", "lists"."type", "lists"."optin", "lists"."status", "lists"."tags", "lists"."description", "lists"."created_at", "lists"."updated_at" FROM "lists" WHERE TRUE ORDER BY "created_at" DESC, "id" DESC LIMIT 20 OFFSET 0) AS "page" ORDER BY "page"."created_at" DESC, "page"."id" DESC;
SELECT "list_id", "status", CAST(SUM(n) AS BIGINT) AS "n" FROM "list_subscriber_counts" WHERE "list_id" IN (:page_lists) GROUP BY "list_id", "status";
