"""Leads reports for the console: speed to lead (median and p90 time to first contact per
team or agent), SLA compliance (met, breached, pending), and conversion with revenue per
currency by validation level, source, rule, campaign or team.

- `window.py`: the report's days `[from, to)` in the site's timezone (pure).
- `store.py`: the SQL (percentiles in Postgres), scoped to one site and window.
- `service.py`: the use cases (who sees which rows, window checks) and their CSV files.
- `models.py`: the JSON shapes (response models, so OpenAPI documents them).
- `api.py`: `GET /v1/leads/reports/{speed,sla,conversion}` (`format=csv` on each).
"""
