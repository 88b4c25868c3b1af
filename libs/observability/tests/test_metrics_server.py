"""The metrics port answers GET /metrics and nothing else."""

import httpx
from beckon_observability.metrics_server import MetricsServer
from prometheus_client import CollectorRegistry, Counter, generate_latest


async def test_metrics_are_served_on_their_own_port():
    registry = CollectorRegistry()
    Counter("beckon_test_things", "things", registry=registry).inc(3)
    server = await MetricsServer("127.0.0.1", 0, lambda: generate_latest(registry)).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            metrics = await http.get("/metrics")
            elsewhere = await http.get("/docs")
    finally:
        await server.stop()
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    assert "beckon_test_things_total 3.0" in metrics.text
    assert elsewhere.status_code == 404
