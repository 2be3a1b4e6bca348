"""How the embedded server is sized (``embedded_db.server_settings``): a pure function of the machine's memory.
That a started server runs with these values is checked in test_embedded_db.py."""

from __future__ import annotations

from ig_analytics.local.embedded_db import machine_memory_bytes, server_settings

GIB = 2**30


def test_shared_buffers_is_an_eighth_of_memory_between_128_mb_and_1_gb():
    assert server_settings(512 * 2**20)["shared_buffers"] == "128MB"  # PostgreSQL's own default as the floor
    assert server_settings(2 * GIB)["shared_buffers"] == "256MB"
    assert server_settings(6 * GIB)["shared_buffers"] == "768MB"
    assert server_settings(64 * GIB)["shared_buffers"] == "1024MB"  # the other processes need the rest


def test_checkpoints_are_spaced_for_an_hourly_tick_of_writes():
    settings = server_settings(8 * GIB)
    assert settings["checkpoint_timeout"] == "15min" and settings["max_wal_size"] == "2GB"


def test_the_machine_memory_is_read_and_a_lower_container_limit_wins(tmp_path):
    machine = machine_memory_bytes(tmp_path / "no-cgroup")
    assert machine > 64 * 2**20
    limit = tmp_path / "memory.max"
    limit.write_text(f"{512 * 2**20}\n")
    assert machine_memory_bytes(limit) == min(machine, 512 * 2**20)
    limit.write_text("max\n")  # cgroup v2: no limit
    assert machine_memory_bytes(limit) == machine
    limit.write_text(f"{machine * 4}\n")  # a limit above the machine's memory
    assert machine_memory_bytes(limit) == machine
