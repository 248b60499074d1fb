"""The edge's firmware cache keeps what some gateway's assignment names and loses the rest, once a day old."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from edge.gateways.mysensors.ota import prune_cache

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def _gateway(gateways: Path, name: str, *checksums: str) -> None:
    (gateways / name).mkdir(parents=True)
    nodes = {str(i): {"node": str(i), "checksum": f"sha256:{checksum}"} for i, checksum in enumerate(checksums)}
    (gateways / name / "ota.json").write_text(json.dumps({"nodes": nodes}))


def _cached(cache: Path, digest: str, age_s: float) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / digest
    path.write_bytes(b"firmware")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_files_no_assignment_names_go_once_old(tmp_path: Path) -> None:
    cache = tmp_path / ".firmware"
    _gateway(tmp_path, "serial1", A)
    _gateway(tmp_path, "mqtt1", B.upper())
    kept_a, kept_b = _cached(cache, A, 90_000), _cached(cache, B, 90_000)
    in_memory = _cached(cache, C, 90_000)
    fresh = _cached(cache, D, 60)  # fetched for an assignment not saved yet
    orphan = _cached(cache, "e" * 64, 90_000)

    assert prune_cache(cache, {f"sha256:{C}"}) == 1
    assert not orphan.exists()
    assert kept_a.exists() and kept_b.exists() and in_memory.exists() and fresh.exists()


def test_an_unreadable_saved_state_keeps_everything(tmp_path: Path) -> None:
    cache = tmp_path / ".firmware"
    (tmp_path / "serial1").mkdir()
    (tmp_path / "serial1" / "ota.json").write_text("{half")
    orphan = _cached(cache, A, 90_000)
    assert prune_cache(cache, set()) == 0 and orphan.exists()
    assert prune_cache(tmp_path / "missing", set()) == 0
