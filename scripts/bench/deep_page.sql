\set offset :n / 2
SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS "total" FROM "list_counts";
SELECT "lists"."id", "lists"."uuid", "lists"."name", "lists"."name_folded", "lists"."type", "lists"."optin", "lists"."status", "lists"."tags", "lists"."description", "lists"."created_at", "lists"."updated_at" FROM "lists" WHERE TRUE ORDER BY "lists"."created_at" DESC, "lists"."id" DESC LIMIT 20 OFFSET :offset;
