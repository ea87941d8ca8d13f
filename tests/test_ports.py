"""The test servers' ports: each xdist worker's own, none the kernel hands out."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.ports import FIRST_PORT, LAST_PORT, block, free_port


@pytest.mark.parametrize("count", [1, 2, 3, 8, 64])
def test_workers_take_disjoint_blocks_inside_the_range(count: int) -> None:
    blocks = [block(index, count) for index in range(count)]
    ports = [port for each in blocks for port in each]
    assert len(ports) == len(set(ports))
    assert min(ports) >= FIRST_PORT and max(ports) < LAST_PORT
    assert min(len(each) for each in blocks) >= 300


def test_the_range_lies_below_the_kernels_ephemeral_ports() -> None:
    lowest = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert lowest >= LAST_PORT


def test_a_port_given_out_can_be_listened_on_and_is_not_given_again() -> None:
    first, second = free_port(), free_port()
    assert first != second
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", first))
        sock.listen()
