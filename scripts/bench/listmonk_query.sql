SELECT COUNT(*) OVER () AS total, lists.* FROM lists
WHERE (TO_TSVECTOR(name) @@ TO_TSQUERY('%cobalt%') OR name ILIKE '%cobalt%')
ORDER BY created_at DESC LIMIT 20 OFFSET 0;
