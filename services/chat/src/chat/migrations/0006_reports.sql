-- Reports (issue 5). The agents' and teams' reports read every conversation that overlaps a
-- period: closed inside or after it (this index, a range on closed_at) or still open (NULLs
-- sort last in the same index). Orders use activity_orders (0002) and the buyers'
-- conversations conversations_visitor (0001). Rule figures come from `rules.stats` in memory.
CREATE INDEX conversations_site_closed ON chat.conversations (site_id, closed_at);
