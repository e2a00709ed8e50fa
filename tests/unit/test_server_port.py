"""Servers restarted on the same port get one the kernel never hands out as a source port."""

from __future__ import annotations

import socket

from devstack.supervisor import ephemeral_range, free_server_port
from tests.support.cluster import free_ports


def test_server_ports_are_free_and_below_the_kernels_ephemeral_range() -> None:
    lo, hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    assert ephemeral_range() == (lo, hi)
    for _ in range(20):
        port = free_server_port()
        assert 1024 <= port < lo
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: binds


def test_a_clusters_ports_are_distinct_and_below_the_range() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6 and max(ports) < ephemeral_range()[0]
