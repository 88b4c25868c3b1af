"""Ports: find free ones, and explain clearly when a wanted one is taken."""

from __future__ import annotations

import socket


class PortInUseError(RuntimeError):
    def __init__(self, what: str, host: str, port: int) -> None:
        super().__init__(
            f"{what}: port {port} on {host} is already in use. Stop whatever holds it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port."
        )
        self.port = port


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_free(what: str, host: str, port: int) -> None:
    """Raise PortInUseError if something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise PortInUseError(what, host, port) from None


def is_listening(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
