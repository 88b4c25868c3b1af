-- Every query of one lead names its site too (`WHERE site_id = $1 AND lead_id = $2`). asyncpg
-- keeps each statement prepared, and Postgres keeps a generic plan for it; a plan made while
-- leads.leads was nearly empty (a new install, before autovacuum's first ANALYZE) costed
-- every index alike and could take one on site_id alone (leads_by_visitor), reading every
-- lead of the site at each update of one lead: measured in bench/leads.py, 1,500 index
-- tuples read per update after 4,000 leads. With a narrow index on both columns, the
-- one-row lookup is the plan on an empty table too (lead_id first: an index that
-- starts with site_id would win the same coin toss in other queries that name the site and
-- one more column, such as capture's lookup by visitor; tests/integration/test_plans.py).
CREATE UNIQUE INDEX leads_by_id_and_site ON leads.leads (lead_id, site_id);
