\set id random(1, :n)
\set d random(1, 1000000000)
BEGIN;
SELECT "lists"."id", "lists"."uuid", "lists"."name", "lists"."name_folded", "lists"."type", "lists"."optin", "lists"."status", "lists"."tags", "lists"."description", "lists"."created_at", "lists"."updated_at" FROM "lists" WHERE "lists"."id" = :id LIMIT 1 FOR UPDATE;
UPDATE "lists" SET "description" = 'd' || :d, "updated_at" = now() WHERE "lists"."id" = :id RETURNING "id", "uuid", "name", "name_folded", "type", "optin", "status", "tags", "description", "created_at", "updated_at";
COMMIT;
