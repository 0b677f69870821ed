-- Seeds :n lists with realistic names, statuses, types, opt-ins and tags, in bulk (not through the API).
-- Every list name holds two of 40 words, so any one word matches about 5% of the lists; 5% of the lists carry the
-- tag `vip`. name_folded is what Roster stores: the lowercase name.
\set ON_ERROR_STOP on
TRUNCATE lists RESTART IDENTITY CASCADE;
WITH words AS (
  SELECT ARRAY['alpha','bravo','cedar','delta','ember','falcon','garnet','harbor','indigo','jasper',
               'kestrel','lumen','maple','nectar','onyx','prairie','quartz','raven','saffron','tundra',
               'umber','violet','willow','xenon','yonder','zephyr','amber','basalt','cobalt','dune',
               'fjord','glacier','hazel','iris','juniper','kelp','lotus','meadow','nimbus','orchid'] AS w
), rows AS (
  SELECT i,
         initcap(w[1 + (i::bigint * 7919) % 40]) || ' ' || w[1 + (i::bigint * 104729 + 13) % 40] || ' newsletter ' || i AS name
  FROM generate_series(1, :n) AS i, words
)
INSERT INTO lists (uuid, name, name_folded, type, optin, status, tags, description, created_at, updated_at)
SELECT gen_random_uuid(), name, lower(name),
       CASE WHEN i % 3 = 0 THEN 'public' ELSE 'private' END,
       CASE WHEN i % 4 = 0 THEN 'double' ELSE 'single' END,
       CASE WHEN i % 10 = 0 THEN 'archived' ELSE 'active' END,
       CASE WHEN i % 20 = 0 THEN '["vip", "news"]'::jsonb
            WHEN i % 2 = 0 THEN '["news"]'::jsonb
            ELSE '[]'::jsonb END,
       'Seeded list ' || i,
       now() - make_interval(secs => (:n - i)),
       now() - make_interval(secs => (:n - i))
FROM rows
ORDER BY i;
INSERT INTO list_tags (list_id, tag) SELECT id, jsonb_array_elements_text(tags) FROM lists;
VACUUM ANALYZE lists;
VACUUM ANALYZE list_tags;
