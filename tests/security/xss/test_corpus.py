"""The payload corpus itself: big enough, ours and the public collection's, each numbered."""

from __future__ import annotations

from xss_corpus import MARK, corpus


def test_the_corpus_has_over_200_payloads_from_both_sources() -> None:
    payloads = corpus()
    assert len(payloads) >= 200
    assert sum(p.source == "ours" for p in payloads) >= 80
    assert sum(p.source == "payloadsallthethings" for p in payloads) >= 150
    assert len({p.text for p in payloads}) == len(payloads)
    assert [p.number for p in payloads] == list(range(1, len(payloads) + 1))


def test_every_payload_fits_a_field_and_is_numbered_in_full() -> None:
    for payload in corpus():
        assert MARK not in payload.text
        # every field takes 512 characters: a payload longer than that would be refused at
        # the edge and never reach a view
        assert len(payload.text) <= 512, payload
