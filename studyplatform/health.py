"""Reachability of the services the platform depends on."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.db.utils import Error as DatabaseError
from kombu import Connection


@dataclass(frozen=True)
class ServiceStatus:
    ok: bool
    detail: str


def database_status(alias: str = "default") -> ServiceStatus:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return ServiceStatus(ok=False, detail=type(exc).__name__)
    return ServiceStatus(ok=True, detail="reachable")


def broker_status(url: str, timeout: float = 2.0) -> ServiceStatus:
    try:
        with Connection(url, connect_timeout=timeout, transport_options={"max_retries": 0}) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            conn.default_channel.client.ping()
    except Exception as exc:  # any failure to reach the broker is "down", whatever its type
        return ServiceStatus(ok=False, detail=type(exc).__name__)
    return ServiceStatus(ok=True, detail="reachable")
