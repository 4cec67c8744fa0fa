"""The storage SLI: bytes stored per tenant (`auditkeep_storage_bytes`), read from the
backend (`Backend.stored_bytes`) at most once a `max_age`, since it scans the bundle
rows. Growth is Prometheus's `deriv()` over it (deploy/grafana). A tenant's `_access`
log counts towards the tenant; beyond the `top` largest, tenants fold into "other"."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from auditkeep.health.slis import OTHER, TOP_TENANTS

log = logging.getLogger(__name__)

#: How old a measurement may be before a scrape measures again (s).
MAX_AGE = 60.0


class StorageSizes:
    """Bytes per tenant, measured lazily and cached."""

    def __init__(self, measure: Callable[[], dict[str, int]], *, max_age: float = MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._measure = measure
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._sizes: dict[str, int] = {}

    def by_tenant(self) -> dict[str, int]:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self._max_age:
                try:
                    per_log = self._measure()
                except Exception:  # a closing or failing store: keep the last figures
                    log.debug("storage SLI: measuring", exc_info=True)
                else:
                    sizes: dict[str, int] = {}
                    for name, size in per_log.items():
                        tenant = name.split(".", 1)[0]
                        sizes[tenant] = sizes.get(tenant, 0) + size
                    self._sizes, self._at = sizes, now
            return dict(self._sizes)

    def families(self, top: int = TOP_TENANTS) -> Iterator[Any]:
        gauge = GaugeMetricFamily("auditkeep_storage_bytes",
                                  "Bytes of entries and raw originals stored, by tenant "
                                  f"(measured at most every {self._max_age:g}s)",
                                  labels=["tenant"])
        ranked = sorted(self.by_tenant().items(), key=lambda kv: (-kv[1], kv[0]))
        folded = dict(ranked[:top])
        if len(ranked) > top:
            folded[OTHER] = sum(size for _, size in ranked[top:])
        for tenant, size in sorted(folded.items()):
            gauge.add_metric([tenant], size)
        yield gauge
