BEGIN;
INSERT INTO "lists" ("uuid", "name", "name_folded", "type", "optin", "status", "tags", "description", "created_at", "updated_at") VALUES (gen_random_uuid(), 'Bench list', 'bench list', 'private', 'single', 'active', '["bench"]', '', now(), now()) RETURNING "id", "uuid", "name", "name_folded", "type", "optin", "status", "tags", "description", "created_at", "updated_at" \gset
INSERT INTO "list_tags" ("list_id", "tag") VALUES (:id, 'bench');
COMMIT;
