\set id random(1, :n)
SELECT "lists"."id", "lists"."uuid", "lists"."name", "lists"."name_folded", "lists"."type", "lists"."optin", "lists"."status", "lists"."tags", "lists"."description", "lists"."created_at", "lists"."updated_at" FROM "lists" WHERE "lists"."id" = :id LIMIT 1;
