-- listmonk's PUT /api/subscribers/lists {"ids": [1..:bulk], "action": "add", "target_list_ids": [:target],
-- "status": "confirmed"} (v6.2, add-subscribers-to-lists), on the lm.* copies: one statement, no counters. The
-- ids are bound as one array; here the server builds it.
INSERT INTO lm.subscriber_lists (subscriber_id, list_id, status)
    (SELECT a, b, (CASE WHEN 'confirmed' != '' THEN 'confirmed' ELSE 'unconfirmed' END)
     FROM UNNEST(ARRAY(SELECT generate_series(1, :bulk))::INT[]) a, UNNEST(ARRAY[:target]::INT[]) b)
    ON CONFLICT (subscriber_id, list_id) DO UPDATE SET status=(CASE WHEN 'confirmed' != '' THEN 'confirmed' ELSE subscriber_lists.status END);
