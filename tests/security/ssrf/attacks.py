"""The SSRF attacks on the CRM webhooks, shared by the guard's unit test and the delivery test.

LITERALS: URLs whose host is itself the attack (an address in some spelling, a local name, a
scheme or credentials); PORT is replaced by a port of the test's (the delivery test points them
at a receiver on this machine). RESOLVED: a public-looking name whose DNS answer is the attack.
"""

from __future__ import annotations

# (url, the guard's code)
LITERALS: list[tuple[str, str]] = [
    # loopback, in every spelling a resolver might read
    ("https://127.0.0.1:PORT/hook", "loopback"),
    ("https://127.255.255.254:PORT/hook", "loopback"),
    ("https://127.1:PORT/hook", "numeric_host"),
    ("https://2130706433:PORT/hook", "numeric_host"),  # decimal
    ("https://0x7f000001:PORT/hook", "numeric_host"),  # hex
    ("https://0x7f.0.0.1:PORT/hook", "numeric_host"),
    ("https://0177.0.0.1:PORT/hook", "numeric_host"),  # octal
    ("https://017700000001:PORT/hook", "numeric_host"),
    ("https://127.0.0.1.:PORT/hook", "numeric_host"),  # trailing dot
    ("https://\u2460\u2461\u2466.0.0.1:PORT/hook", "numeric_host"),  # ①②⑦ (IDNA folds to 127)
    ("https://[::1]:PORT/hook", "loopback"),
    ("https://[0:0:0:0:0:0:0:1]:PORT/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]:PORT/hook", "loopback"),  # IPv4-mapped IPv6
    ("https://[::ffff:7f00:1]:PORT/hook", "loopback"),
    ("https://[64:ff9b::7f00:1]:PORT/hook", "loopback"),  # NAT64
    ("https://[2002:7f00:1::]:PORT/hook", "loopback"),  # 6to4
    ("https://0.0.0.0:PORT/hook", "unspecified"),
    ("https://[::]:PORT/hook", "unspecified"),
    ("https://0:PORT/hook", "numeric_host"),
    # the cloud's metadata service and other link-local addresses
    ("https://169.254.169.254:PORT/latest/meta-data/", "link_local"),
    ("https://[::ffff:169.254.169.254]:PORT/latest/meta-data/", "link_local"),
    ("https://[::ffff:a9fe:a9fe]:PORT/latest/meta-data/", "link_local"),
    ("https://2852039166:PORT/latest/meta-data/", "numeric_host"),  # 169.254.169.254
    ("https://0xa9fea9fe:PORT/latest/meta-data/", "numeric_host"),
    ("https://0251.0376.0251.0376:PORT/latest/meta-data/", "numeric_host"),
    ("https://[fe80::1]:PORT/hook", "link_local"),
    ("https://[fe80::1%25eth0]:PORT/hook", "link_local"),  # with a zone id
    ("https://[fd00:ec2::254]:PORT/latest/meta-data/", "private"),  # AWS' IPv6 metadata
    # private ranges
    ("https://10.0.0.1:PORT/hook", "private"),
    ("https://10.255.255.254:PORT/hook", "private"),
    ("https://172.16.0.1:PORT/hook", "private"),
    ("https://172.31.255.254:PORT/hook", "private"),
    ("https://192.168.0.1:PORT/hook", "private"),
    ("https://192.168.255.254:PORT/hook", "private"),
    ("https://[::ffff:10.0.0.1]:PORT/hook", "private"),
    ("https://[::ffff:192.168.1.1]:PORT/hook", "private"),
    ("https://[fc00::1]:PORT/hook", "private"),
    ("https://[fd12:3456:789a::1]:PORT/hook", "private"),
    ("https://167772161:PORT/hook", "numeric_host"),  # 10.0.0.1
    ("https://0xc0a80001:PORT/hook", "numeric_host"),  # 192.168.0.1
    # other addresses that are not the public internet
    ("https://100.64.0.1:PORT/hook", "not_global"),  # carrier-grade NAT
    ("https://198.18.0.1:PORT/hook", "private"),  # benchmarking (Python counts it private)
    ("https://224.0.0.1:PORT/hook", "multicast"),
    ("https://[ff02::1]:PORT/hook", "multicast"),
    ("https://240.0.0.1:PORT/hook", "reserved"),
    ("https://255.255.255.255:PORT/hook", "reserved"),
    # names of this machine
    ("https://localhost:PORT/hook", "local_host"),
    ("https://LOCALHOST.:PORT/hook", "local_host"),
    ("https://crm.localhost:PORT/hook", "local_host"),
    ("https://localhost.localdomain:PORT/hook", "local_host"),
    ("https://ip6-localhost:PORT/hook", "local_host"),
    ("https://ip6-loopback:PORT/hook", "local_host"),
    # schemes and credentials
    ("http://crm.example.com:PORT/hook", "scheme"),  # plain http (refused outside dev)
    ("file:///etc/passwd", "scheme"),
    ("gopher://127.0.0.1:PORT/_HELO", "scheme"),
    ("ftp://crm.example.com/hook", "scheme"),
    ("https://user:secret@crm.example.com:PORT/hook", "credentials"),
    ("https://crm.example.com:PORT@127.0.0.1:PORT/hook", "credentials"),
]

# (address the public-looking name resolves to, the guard's code)
RESOLVED: list[tuple[list[str], str]] = [
    (["127.0.0.1"], "loopback"),
    (["127.0.1.1"], "loopback"),
    (["::1"], "loopback"),
    (["::ffff:127.0.0.1"], "loopback"),
    (["169.254.169.254"], "link_local"),
    (["fe80::a9fe:a9fe"], "link_local"),
    (["10.0.0.5"], "private"),
    (["172.20.1.1"], "private"),
    (["192.168.10.10"], "private"),
    (["fc00::5"], "private"),
    (["fd00::1"], "private"),
    (["::ffff:192.168.0.1"], "private"),
    (["0.0.0.0"], "unspecified"),
    (["100.100.100.200"], "not_global"),  # Alibaba Cloud's metadata service
    (["93.184.215.14", "127.0.0.1"], "loopback"),  # one private answer among public ones
    (["93.184.215.14", "10.0.0.1"], "private"),
]

PUBLIC_ADDRESS = "93.184.215.14"  # a public unicast address (nothing here connects to it)
NAME = "crm.example.com"
