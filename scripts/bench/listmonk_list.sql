SELECT COUNT(*) OVER () AS total, lists.* FROM lists ORDER BY created_at DESC LIMIT 20 OFFSET 0;
