"""Security limits: allowlist on a non-loopback listen address, TCP connection count, per-client
rate limit, packet size bound."""

from __future__ import annotations

import socket
import time

import pytest

from aedaemon.client import Client
from aedaemon.oscwire import encode_message
from daemon_harness import Daemon


def _lan_ip() -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.200", 9))  # no packet is sent; picks the outgoing interface
        ip = s.getsockname()[0]
    finally:
        s.close()
    assert not ip.startswith("127."), "these tests need a non-loopback interface"
    return ip


def test_allowlist_drops_and_counts_others(tmp_path, models_dir):
    ip = _lan_ip()
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text('listen = "0.0.0.0"\nallow = ["10.0.0.0/8"]\n')
    with Daemon(tmp_path, models_dir, "--fresh", config=cfg) as d:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        s.settimeout(0.5)
        for _ in range(5):
            s.sendto(encode_message("/status"), (ip, d.port))
        with pytest.raises(socket.timeout):
            s.recv(1000)
        with pytest.raises(OSError):  # TCP from outside the allowlist is closed at once
            t = socket.create_connection((ip, d.port), timeout=1, source_address=(ip, 0))
            t.sendall(b"\0\0\0\x0c/status\0,\0\0\0")
            t.settimeout(1)
            if t.recv(100) == b"":
                raise OSError("closed")
        with Client(port=d.port) as c:  # loopback is always allowed
            assert c.status()["dropped_packets"] >= 6
    cfg.write_text(f'listen = "0.0.0.0"\nallow = ["{ip}/24"]\n')
    with Daemon(tmp_path, models_dir, "--fresh", config=cfg) as d:
        with Client(host=ip, port=d.port) as c:
            assert c.status()["dropped_packets"] == 0


def test_non_loopback_listen_requires_allow(tmp_path, models_dir):
    from daemon_harness import run_cli

    r = run_cli("run", "--audio", "null", "--listen", "0.0.0.0", "--models-dir", str(models_dir),
                "--model", "synthetic", cwd=tmp_path)
    assert r.returncode == 2
    assert "flag --listen" in r.stderr and "allow" in r.stderr


def test_tcp_connection_limit_and_rate_limit(tmp_path, models_dir):
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text("max_tcp_clients = 2\nclient_rate = 200\n")
    with Daemon(tmp_path, models_dir, "--fresh", config=cfg) as d:
        a = socket.create_connection(("127.0.0.1", d.port))
        b = socket.create_connection(("127.0.0.1", d.port))
        time.sleep(0.2)
        third = socket.create_connection(("127.0.0.1", d.port))
        third.settimeout(2)
        assert third.recv(10) == b""  # refused: closed by the daemon
        a.close()
        b.close()
        third.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(1000):  # a burst far beyond 200 messages/s (burst 64)
            u.sendto(encode_message("/gain", [1.0]), ("127.0.0.1", d.port))
        time.sleep(1.0)  # let the bucket refill for the client below (a different port, same host)
        with Client(port=d.port) as c:
            st = c.status()
            assert st["dropped_packets"] >= 1 + 800


def test_udp_packets_over_max_packet_are_dropped(tmp_path, models_dir):
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text("max_packet = 1024\n")
    with Daemon(tmp_path, models_dir, "--fresh", "--audio", "null", config=cfg) as d:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(0.5)
        u.sendto(encode_message("/preset/save", ["x" * 2000]), ("127.0.0.1", d.port))
        with pytest.raises(socket.timeout):
            u.recv(1000)  # dropped: not even a /fail
        with Client(port=d.port) as c:
            assert c.status()["dropped_packets"] == 1
