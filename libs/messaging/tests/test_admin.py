"""Topic creation refuses settings under which no write could be acknowledged."""

import pytest
from beckon_messaging import ensure_topics


@pytest.mark.parametrize(("factor", "min_isr"), [(1, 2), (3, 4), (3, 0)])
async def test_min_insync_replicas_must_fit_the_replication_factor(factor, min_isr):
    # refused before any connection: this address is never dialled
    with pytest.raises(ValueError, match="must be between 1 and the replication factor"):
        await ensure_topics("127.0.0.1:1", replication_factor=factor, min_insync_replicas=min_isr)
