"""The chaos battery's parts: a stack of killable processes with a controllable network between
them (`stack`, `proxy`), traffic that records what the system accepted (`traffic`, `ledger`) and
the checks of that ledger against what the system holds (`checks`). The battery itself is in
tests/chaos (short, in `make test`) and bench/chaos.py (long runs, the soak)."""
