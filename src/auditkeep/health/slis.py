"""The service level indicators of the seed (docs/operations.md "Metrics and SLIs").

One `Slis` per node (n.options["slis"]). Hot paths call its cheap methods (a dict
update under a lock, once per request rather than once per event); `/metrics` reads
it through `collect()` and an SLO evaluator through `good_total()`.

Latencies are measured from the event's server `received` time, never the producer's
`time`, so a producer's clock skew shows in `auditkeep_clock_skew_seconds` and
nowhere else. Labels stay bounded: tenants beyond the top `TOP_TENANTS` by volume are
reported as "other" (folded when scraped), sources are route names fixed by the
configuration, and no id or free text is ever a label.
"""

from __future__ import annotations

import bisect
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: Delivery latency buckets (s); `good_total("searchable", within=...)` needs a bound.
DELIVERY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
#: Query latency buckets (s).
QUERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: received - time (s): negative when the producer's clock is ahead of the server's.
SKEW_BUCKETS = (-3600.0, -600.0, -60.0, -5.0, -1.0, 1.0, 5.0, 60.0, 600.0, 3600.0)
STAGES = ("committed", "searchable")
QUERY_KINDS = ("search", "aggregate", "export", "evidence")
#: Canary latency buckets (s), per stage of its round trip.
CANARY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
TOP_TENANTS = 20
OTHER = "other"
#: Recent skews kept per source for GET /v1/status.
RECENT_SKEWS = 256
#: Commits waiting to become searchable, at most (the oldest are let go first).
MAX_TRACKED = 10_000


class _Hist:
    """A histogram's bucket counts and sum, folded at scrape time."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += n
        self.total += value * n

    def add(self, other: _Hist) -> None:
        for i, c in enumerate(other.counts):
            self.counts[i] += c
        self.total += other.total

    def count(self) -> int:
        return sum(self.counts)

    def within(self, bound: float) -> int:
        """Observations known to be <= bound: those of the buckets up to the largest
        bucket bound <= `bound` (conservative when `bound` falls between two)."""
        return sum(self.counts[: bisect.bisect_right(self.bounds, bound)])

    def quantile(self, q: float) -> float | None:
        """The q-quantile as Prometheus' histogram_quantile estimates it from the same
        buckets (linear within its bucket; the largest bound when it lies above every
        bound), so the UI's figures match Grafana's; None without observations."""
        n = self.count()
        if n == 0:
            return None
        rank, running = q * n, 0
        for i, c in enumerate(self.counts):
            if c and running + c >= rank:
                if i == len(self.bounds):
                    return self.bounds[-1]
                upper = self.bounds[i]
                lower = self.bounds[i - 1] if i else min(0.0, upper)
                return lower + (upper - lower) * (rank - running) / c
            running += c
        return self.bounds[-1]

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, c in zip([*self.bounds, float("inf")], self.counts, strict=True):
            running += c
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])


def timed(kind: str) -> Callable[[_Handler], _Handler]:
    """Decorate an HTTP handler `f(request)`: its latency (to the response, not the
    end of a streamed body), once per request, as `auditkeep_query_latency_seconds`
    of `kind`, whatever the outcome."""
    if kind not in QUERY_KINDS:
        raise ValueError(f"unknown query kind {kind!r}")

    def wrap(f: _Handler) -> _Handler:
        @functools.wraps(f)
        async def handler(request: Any, *args: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return await f(request, *args, **kw)
            finally:
                slis = request.app.state.node.options.get("slis")
                if slis is not None:
                    slis.query(kind, time.perf_counter() - start)
        return handler  # type: ignore[return-value]
    return wrap


def histogram_good_total(hist: Any) -> Callable[[float | None], tuple[int, int]]:
    """good_total over a prometheus-client Histogram (detection's alert latency):
    observations within the largest bucket bound <= `within`, and all of them."""
    def read(within: float | None) -> tuple[int, int]:
        good = total = 0.0
        best = -1.0
        for family in hist.collect():
            for sample in family.samples:
                if sample.name.endswith("_count"):
                    total += sample.value
                elif sample.name.endswith("_bucket"):
                    le = float(sample.labels["le"])
                    if within is not None and best <= le <= within:
                        good, best = (sample.value if le > best else good + sample.value), le
        return int(good), int(total)
    return read


@dataclass(slots=True)
class _Tracked:
    log: str
    size: int
    tenant: str
    source: str
    received: float
    count: int


@dataclass(eq=False)  # hashable by identity: a registry keys its collectors
class Slis(Collector):
    """Counters and histograms of the SLIs; thread-safe; a prometheus-client Collector."""

    top_tenants: int = TOP_TENANTS
    #: How often the tracker thread compares commits with the search index (s).
    tick: float = 0.25
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _delivery: dict[tuple[str, str, str], _Hist] = field(default_factory=dict, repr=False)
    _skew: dict[str, _Hist] = field(default_factory=dict, repr=False)
    _recent_skew: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _queries: dict[str, _Hist] = field(default_factory=dict, repr=False)
    _requests: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    _events: dict[str, int] = field(default_factory=dict, repr=False)
    _unknown: dict[str, int] = field(default_factory=dict, repr=False)
    _integrity: dict[str, int] = field(default_factory=dict, repr=False)
    _access: dict[str, int] = field(default_factory=dict, repr=False)
    _canary: dict[str, _Hist] = field(default_factory=dict, repr=False)
    _canary_failures: dict[str, int] = field(default_factory=dict, repr=False)
    _alerted: Callable[[float | None], tuple[int, int]] | None = field(default=None,
                                                                         repr=False)
    _tracked: deque[_Tracked] = field(default_factory=deque, repr=False)
    _index_cursors: Callable[[], dict[str, int]] | None = field(default=None, repr=False)
    _extra: list[Callable[[], Iterable[Any]]] = field(default_factory=list, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    # what other code calls ----------------------------------------------------------

    def observe_delivery(self, stage: str, tenant: str, source: str, seconds: float,
                         count: int = 1) -> None:
        """`count` events of `tenant` from `source` reached `stage` ("committed" or
        "searchable") `seconds` after the server received them."""
        if stage not in STAGES:
            raise ValueError(f"unknown delivery stage {stage!r}")
        with self._lock:
            h = self._delivery.get((stage, tenant, source))
            if h is None:
                h = self._delivery[(stage, tenant, source)] = _Hist(DELIVERY_BUCKETS)
            h.observe(max(seconds, 0.0), count)

    def clock_skew(self, source: str, seconds: float) -> None:
        """received - time of an event from `source` (negative: the producer is ahead)."""
        with self._lock:
            h = self._skew.get(source)
            if h is None:
                h = self._skew[source] = _Hist(SKEW_BUCKETS)
                self._recent_skew[source] = deque(maxlen=RECENT_SKEWS)
            h.observe(seconds)
            self._recent_skew[source].append(seconds)

    def integrity_failure(self, check: str) -> None:
        with self._lock:
            self._integrity[check] = self._integrity.get(check, 0) + 1

    def query(self, kind: str, seconds: float) -> None:
        if kind not in QUERY_KINDS:
            raise ValueError(f"unknown query kind {kind!r}")
        with self._lock:
            h = self._queries.get(kind)
            if h is None:
                h = self._queries[kind] = _Hist(QUERY_BUCKETS)
            h.observe(seconds)

    def ingest_request(self, source: str, status: int) -> None:
        """One ingest request from `source` answered with `status`."""
        key = (source, f"{status // 100}xx")
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1

    def canary(self, stage: str, seconds: float) -> None:
        """The canary's round trip reached `stage` (e.g. "committed", "searchable",
        "proved") `seconds` after it emitted its event."""
        with self._lock:
            h = self._canary.get(stage)
            if h is None:
                h = self._canary[stage] = _Hist(CANARY_BUCKETS)
            h.observe(max(seconds, 0.0))

    def canary_failure(self, stage: str) -> None:
        """A canary run failed at `stage`."""
        with self._lock:
            self._canary_failures[stage] = self._canary_failures.get(stage, 0) + 1

    def follow_alerts(self, good_total: Callable[[float | None], tuple[int, int]]) -> None:
        """Where good_total("alerted", within) reads (detection's alert latency)."""
        self._alerted = good_total

    def access(self, action: str) -> None:
        """A record appended to an `_access` log (`auditkeep.read.<action>`)."""
        with self._lock:
            self._access[action] = self._access.get(action, 0) + 1

    def committed(self, tenant: str, source: str, count: int, new: int, size: int,
                  facts: Any, log: str | None = None) -> None:
        """A request's `count` events, `new` of them not duplicates, were committed to
        log `log` (default: `tenant`), which is now `size` long. `facts`: the batch's
        `BatchFacts` (server/batches.py): received time, one skew sample and unknown
        actors. Once per request: delivery latency, skew, counts, and the commit is
        tracked until it is searchable."""
        if facts is None or not count:
            return
        now = self.clock()
        self.clock_skew(source, facts.skew)
        if new:
            self.observe_delivery("committed", tenant, source, now - facts.received, new)
        with self._lock:
            self._events[tenant] = self._events.get(tenant, 0) + count
            if facts.unknown:
                self._unknown[tenant] = self._unknown.get(tenant, 0) + facts.unknown
            if new and self._index_cursors is not None:
                if len(self._tracked) >= MAX_TRACKED:
                    self._tracked.popleft()
                self._tracked.append(_Tracked(log or tenant, size, tenant, source,
                                              facts.received, new))

    # for an SLO evaluator -----------------------------------------------------------

    def good_total(self, sli: str, within: float | None = None) -> tuple[int, int]:
        """Cumulative (good, total) of an SLI since the process started (the names of
        pipeline/config_ops.py SLIS).

        "ingest_success": ingest requests not answered 5xx / all (4xx are the client's);
        "committed" | "searchable": events that got there within `within` s / all that
        got there; "query": queries answered within `within` s / all; "canary": canary
        runs that passed / all; "alerted": alerts stored within `within` s of their
        event / all. A `within` between two bucket bounds counts as the lower one."""
        if sli == "alerted":
            if self._alerted is None:
                return 0, 0
            return self._alerted(within)
        if sli == "searchable":
            self._advance_quietly()
        with self._lock:
            if sli == "ingest_success":
                total = sum(self._requests.values())
                bad = sum(c for (_, cls), c in self._requests.items() if cls == "5xx")
                return total - bad, total
            if sli in STAGES or sli == "query":
                if within is None:
                    raise ValueError(f"good_total({sli!r}) needs within=")
                hs = ([h for (stage, _, _), h in self._delivery.items() if stage == sli]
                      if sli in STAGES else list(self._queries.values()))
                return sum(h.within(within) for h in hs), sum(h.count() for h in hs)
            if sli == "canary":
                # a run ends in "searchable" or better when it passes, else one failure
                passed = sum(h.count() for st, h in self._canary.items() if st == "total")
                failed = sum(self._canary_failures.values())
                return passed, passed + failed
        raise ValueError(f"unknown SLI {sli!r}")

    # searchable tracking --------------------------------------------------------------

    def follow_index(self, cursors: Callable[[], dict[str, int]]) -> None:
        """Measure "searchable": `cursors()` gives, per log name, how far the search
        index goes; a commit is searchable once its log's cursor reaches its size."""
        self._index_cursors = cursors

    def advance(self) -> None:
        """Observe "searchable" for the tracked commits the index has reached."""
        if self._index_cursors is None:
            return
        with self._lock:
            if not self._tracked:
                return
        cursors = self._index_cursors()
        now = self.clock()
        done: list[_Tracked] = []
        with self._lock:
            kept: deque[_Tracked] = deque()
            for t in self._tracked:
                (done if cursors.get(t.log, 0) >= t.size else kept).append(t)
            self._tracked = kept
        for t in done:
            self.observe_delivery("searchable", t.tenant, t.source, now - t.received, t.count)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="slis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self._advance_quietly()

    def _advance_quietly(self) -> None:
        """advance(), logging a failure: the store or index is closing or failing
        (readiness says so); what is already known is still reported."""
        try:
            self.advance()
        except Exception:
            log.debug("slis: reading the search index's progress", exc_info=True)

    # reading ----------------------------------------------------------------------------

    def skew_summary(self) -> dict[str, dict[str, float | int]]:
        """Per source, over its recent events: p50, min and max of received - time (s)."""
        out: dict[str, dict[str, float | int]] = {}
        with self._lock:
            recent = {s: sorted(d) for s, d in self._recent_skew.items()}
        for source, values in sorted(recent.items()):
            if values:
                out[source] = {"samples": len(values), "p50": round(values[len(values) // 2], 3),
                               "min": round(values[0], 3), "max": round(values[-1], 3)}
        return out

    def latency_summary(self, qs: Sequence[float] = (0.5, 0.99)
                        ) -> dict[str, dict[str, dict[str, float | int | None]]]:
        """Since start, per delivery stage and per query kind: the count and the
        `qs` quantiles (keys "p50", "p99", ...) estimated from the buckets, summed over
        tenants and sources as the Grafana dashboard's histogram_quantile sums them."""
        self._advance_quietly()
        with self._lock:
            groups: dict[str, dict[str, _Hist]] = {"delivery": {}, "query": {}}
            for (stage, _, _), h in self._delivery.items():
                agg = groups["delivery"].setdefault(stage, _Hist(DELIVERY_BUCKETS))
                agg.add(h)
            for kind, h in self._queries.items():
                groups["query"].setdefault(kind, _Hist(QUERY_BUCKETS)).add(h)
        out: dict[str, dict[str, dict[str, float | int | None]]] = {}
        for group, hists in groups.items():
            out[group] = {}
            for name, h in sorted(hists.items()):
                row: dict[str, float | int | None] = {"count": h.count()}
                for q in qs:
                    v = h.quantile(q)
                    row[f"p{q * 100:g}"] = None if v is None else round(v, 4)
                out[group][name] = row
        return out

    def fold(self, tenant: str, top: set[str]) -> str:
        return tenant if tenant in top else OTHER

    def top(self) -> set[str]:
        """The tenants with the most events, at most `top_tenants` of them."""
        ranked = sorted(self._events.items(), key=lambda kv: (-kv[1], kv[0]))
        return {t for t, _ in ranked[: self.top_tenants]}

    def add_collector(self, fn: Callable[[], Iterable[Any]]) -> None:
        """More metric families to yield when scraped (storage sizes, from the node)."""
        self._extra.append(fn)

    def collect(self) -> Iterator[Any]:
        self._advance_quietly()
        with self._lock:
            top = self.top()
            delivery: dict[tuple[str, str, str], _Hist] = {}
            for (stage, tenant, source), h in self._delivery.items():
                key = (stage, self.fold(tenant, top), source)
                agg = delivery.get(key)
                if agg is None:
                    agg = delivery[key] = _Hist(DELIVERY_BUCKETS)
                agg.add(h)
            skew = {s: (h.buckets(), h.total) for s, h in self._skew.items()}
            queries = {k: (h.buckets(), h.total) for k, h in self._queries.items()}
            requests = dict(self._requests)
            events: dict[str, int] = {}
            unknown: dict[str, int] = {}
            for tenant, c in self._events.items():
                k = self.fold(tenant, top)
                events[k] = events.get(k, 0) + c
            for tenant, c in self._unknown.items():
                k = self.fold(tenant, top)
                unknown[k] = unknown.get(k, 0) + c
            integrity = dict(self._integrity)
            access = dict(self._access)
            canary = {k: (h.buckets(), h.total) for k, h in self._canary.items()}
            canary_failures = dict(self._canary_failures)
        yield _counter("auditkeep_ingest_requests",
                       "Ingest requests answered, by source and status class",
                       ["source", "code"], requests)
        yield _histogram("auditkeep_delivery_latency_seconds",
                         "Server received to committed / searchable, by stage, tenant and "
                         "source", ["stage", "tenant", "source"],
                         {k: (h.buckets(), h.total) for k, h in delivery.items()})
        yield _histogram("auditkeep_clock_skew_seconds",
                         "Server received minus the event's time (negative: the producer's "
                         "clock is ahead), one event a request", ["source"], skew)
        yield _histogram("auditkeep_query_latency_seconds", "Query latency, by kind",
                         ["kind"], queries)
        yield _counter("auditkeep_ingested_events", "Events accepted by ingest, by tenant",
                       ["tenant"], events)
        yield _counter("auditkeep_unknown_actor_events",
                       "Ingested events whose actor is anonymous, by tenant", ["tenant"],
                       unknown)
        yield _counter("auditkeep_integrity_failures", "Integrity checks that failed, by check",
                       ["check"], integrity)
        yield _counter("auditkeep_access_records", "Records appended to _access logs, by action",
                       ["action"], access)
        yield _histogram("auditkeep_canary_latency_seconds",
                         "Synthetic canary: emit to each stage (total: the whole round trip "
                         "of a run that passed)", ["stage"], canary)
        yield _counter("auditkeep_canary_failures",
                       "Synthetic canary runs that failed, by the stage that failed",
                       ["stage"], canary_failures)
        for fn in self._extra:
            yield from fn()


def _labels(key: str | tuple[str, ...]) -> list[str]:
    return [key] if isinstance(key, str) else list(key)


def _counter(name: str, doc: str, labels: list[str],
             values: Mapping[Any, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, count in sorted(values.items()):
        family.add_metric(_labels(key), count)
    return family


def _histogram(name: str, doc: str, labels: list[str],
               values: Mapping[Any, tuple[list[tuple[str, float]], float]]
               ) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, (buckets, total) in sorted(values.items()):
        family.add_metric(_labels(key), buckets, total)
    return family
