"""Delete cache keys written under other cache versions.

A release that writes a different record shape writes under a new version, and the
keys of the old one stay behind. Every CACHE_CLEANUP_INTERVAL the loader scans the
three entity prefixes and deletes keys whose version part is not the current one,
in batches, one single-key DEL each so it also works across cluster slots.
Coordination keys (``schematic:datastream:*``) and anything else under
``schematic:`` do not match the scanned prefixes and are never touched.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

logger = logging.getLogger(__name__)

PREFIXES = ("schematic:flags:", "schematic:company:", "schematic:user:")
SCAN_COUNT = 1000
DELETE_BATCH = 500


def delete_other_versions(client: Any, version: str) -> Counter[str]:
    """Delete every entity key not of ``version``; return how many per version."""
    deleted: Counter[str] = Counter()
    for prefix in PREFIXES:
        batch: list[str] = []
        for raw in client.scan_iter(match=prefix + "*", count=SCAN_COUNT):
            key = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            key_version = _version_of(key, prefix)
            if key_version is None or key_version == version:
                continue
            batch.append(key)
            deleted[key_version] += 1
            if len(batch) >= DELETE_BATCH:
                _delete(client, batch)
                batch = []
        _delete(client, batch)
    return deleted


def _version_of(key: str, prefix: str) -> str | None:
    rest = key[len(prefix) :]
    version, separator, tail = rest.partition(":")
    if not separator or not version or not tail:
        return None
    return version


def _delete(client: Any, keys: list[str]) -> None:
    if not keys:
        return
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.delete(key)
    pipe.execute()


def run_cleanup(client: Any, version: str) -> None:
    """One cleanup pass, logged with counts per stale version."""
    deleted = delete_other_versions(client, version)
    if deleted:
        summary = ", ".join(
            f"{count} of version {name!r}" for name, count in sorted(deleted.items())
        )
        logger.info(
            "Cache cleanup deleted %d keys of other versions: %s.", sum(deleted.values()), summary
        )
    else:
        logger.debug("Cache cleanup found no keys of other versions.")
