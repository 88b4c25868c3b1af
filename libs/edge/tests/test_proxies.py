import pytest
from beckon_edge import client_address, networks_setting, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "192.0.2.7"])


def test_without_trusted_proxies_the_header_is_ignored():
    assert client_address("198.51.100.9", ["1.2.3.4"], ()) == "198.51.100.9"


def test_a_peer_that_is_not_our_proxy_is_the_client_whatever_it_forwards():
    assert client_address("198.51.100.9", ["1.2.3.4, 10.0.0.1"], PROXIES) == "198.51.100.9"


def test_the_first_untrusted_address_from_the_right_is_the_client():
    # the client wrote "1.2.3.4" itself; our proxies appended 203.0.113.5 and 10.1.1.1
    chain = ["1.2.3.4, 203.0.113.5, 10.1.1.1"]
    assert client_address("192.0.2.7", chain, PROXIES) == "203.0.113.5"


def test_a_forged_left_most_entry_cannot_change_the_answer():
    honest = client_address("10.0.0.2", ["203.0.113.5"], PROXIES)
    forged = client_address("10.0.0.2", ["6.6.6.6, 203.0.113.5"], PROXIES)
    assert honest == forged == "203.0.113.5"


def test_several_headers_read_as_one_list_in_order():
    assert client_address("10.0.0.2", ["6.6.6.6", "203.0.113.5, 10.9.9.9"], PROXIES) == (
        "203.0.113.5"
    )


def test_a_trusted_peer_without_the_header_is_the_client():
    assert client_address("10.0.0.2", [], PROXIES) == "10.0.0.2"


def test_all_hops_trusted_gives_the_furthest_one():
    assert client_address("10.0.0.2", ["10.0.0.9, 10.0.0.3"], PROXIES) == "10.0.0.9"


def test_garbage_beyond_our_proxies_gives_the_last_trusted_hop():
    assert client_address("10.0.0.2", ["203.0.113.5, not-an-ip, 10.0.0.3"], PROXIES) == ("10.0.0.3")


def test_ports_brackets_and_ipv4_mapped_addresses_are_understood():
    proxies = parse_networks(["10.0.0.0/8", "2001:db8::/32"])
    assert client_address("::ffff:10.0.0.2", ["203.0.113.5:4711"], proxies) == "203.0.113.5"
    assert client_address("2001:db8::1", ["[2001:db9::5]:443"], proxies) == "2001:db9::5"


def test_a_peer_that_is_not_an_address_is_kept_as_is():
    assert client_address("testclient", ["1.2.3.4"], PROXIES) == "testclient"
    assert client_address(None, ["1.2.3.4"], PROXIES) is None


def test_a_bad_cidr_is_named():
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not an IP address or CIDR"):
        parse_networks(["10.0.0.0/33"])
    assert parse_networks([" 10.0.0.1/8 ", ""]) == parse_networks(["10.0.0.0/8"])


def test_the_setting_reads_commas_json_or_lists():
    expected = parse_networks(["10.0.0.0/8", "192.0.2.7/32"])
    assert networks_setting("10.0.0.0/8, 192.0.2.7") == expected
    assert networks_setting('["10.0.0.0/8", "192.0.2.7"]') == expected
    assert networks_setting(["10.0.0.0/8", "192.0.2.7"]) == expected
    assert networks_setting("") == ()
