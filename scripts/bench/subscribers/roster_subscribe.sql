-- POST /api/public/subscription with a new e-mail on lists :l1 and :l2 (UUIDs :u1, :u2): the lists open for
-- subscription, then one transaction: the subscriber (kept if the e-mail exists), its id, its subscriptions.
-- Roster binds a UUID and timestamps made in the client; here the server makes them.
\set r random(1, 1000000000000000)
SELECT "lists"."id", "lists"."optin" FROM "lists" WHERE "lists"."uuid" IN (':u1', ':u2') AND "lists"."type" = 'public' AND "lists"."status" = 'active';
BEGIN;
INSERT INTO "subscribers" ("uuid", "email", "name", "name_folded", "attribs", "status", "created_at", "updated_at") VALUES (gen_random_uuid(), 'pg:run.:client_id.:r@bench.test', 'pg:run.:client_id.:r', 'pg:run.:client_id.:r', '{}', 'enabled', now(), now()) ON CONFLICT ("email") DO NOTHING RETURNING "id";
SELECT "subscribers"."id", "subscribers"."status" FROM "subscribers" WHERE "subscribers"."email" = 'pg:run.:client_id.:r@bench.test' LIMIT 1 \gset
INSERT INTO "subscriber_lists" ("subscriber_id", "list_id", "status", "created_at", "updated_at") VALUES (:id, :l1, 'unconfirmed', now(), now()), (:id, :l2, 'unconfirmed', now(), now()) ON CONFLICT ("subscriber_id", "list_id") DO NOTHING RETURNING "subscriber_id", "list_id";
COMMIT;
