-- A repeated tag filter: the lists' version (the total is reused while it is unchanged), then the page.
SELECT CAST(COALESCE(SUM(changes), 0) AS BIGINT) FROM "list_counts";
SELECT "lists"."id", "lists"."uuid", "lists"."name", "lists"."name_folded", "lists"."type", "lists"."optin", "lists"."status", "lists"."tags", "lists"."description", "lists"."created_at", "lists"."updated_at" FROM "lists" WHERE "lists"."id" IN (SELECT "list_id" FROM "list_tags" WHERE "list_tags"."tag" = 'vip') ORDER BY "lists"."created_at" DESC, "lists"."id" DESC LIMIT 20 OFFSET 0;
