\set offset :n / 2
-- A deep page (page N/40 of 20): the page and its total (from the counters) in one statement.
SELECT "page".*, (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM "list_counts") AS "alongside" FROM (SELECT "lists"."id", "lists"."uuid", "lists"."name", "lists"."name_folded", "lists"."type", "lists"."optin", "lists"."status", "lists"."tags", "lists"."description", "lists"."created_at", "lists"."updated_at" FROM "lists" WHERE TRUE ORDER BY "lists"."created_at" DESC, "lists"."id" DESC LIMIT 20 OFFSET :offset) AS "page" ORDER BY "page"."created_at" DESC, "page"."id" DESC;
