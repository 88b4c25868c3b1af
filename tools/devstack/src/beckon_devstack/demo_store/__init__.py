"""A small web store that runs the Beckon snippet on every page: the dev stack's demo site.

Run it with `python -m beckon_devstack.demo_store --tracker-url http://127.0.0.1:8001
--site-key pk_demo_beckon`, or build the app with `create_app` for tests.
"""

from beckon_devstack.demo_store.app import create_app

__all__ = ["create_app"]
