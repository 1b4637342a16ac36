"""GET /metrics: Prometheus text: django-prometheus, every media worker's figures, disk space.

Each enabled camera's worker is asked over the channel layer (RPC op
"metrics", a short timeout, all cameras at once); one that does not answer
shows as petcam_worker_up{camera} 0. Allowed from loopback (REMOTE_ADDR, which
petcam_site/proxy_headers.py takes from trusted proxies only) or with a staff user's
token (Authorization: Bearer/Token) or staff session; anyone else gets 403.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from petcam_site.auth import is_staff_or_loopback
from petcam_site.health import camera_slugs, check_disk
from streaming import metric_families
from streaming.consumers import live_fanouts
from streaming.worker_rpc import call_worker

log = logging.getLogger("petcam.metrics")


async def _worker_families(camera: str, timeout: float) -> tuple[bool, list[Metric]]:
    try:
        data = await call_worker(camera, "metrics", timeout=timeout)
    except Exception as exc:  # timeout, worker error, channel layer down: all "not up"
        log.debug("metrics: worker of camera %s did not answer: %s", camera, exc)
        return False, []
    return True, metric_families.from_json(data)


class _Families:
    """A one-shot collector over already gathered families (for generate_latest)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def disk_families(disk: dict) -> list[Metric]:
    """Free space where recordings go (health's disk check): "disk nearly full" alerts."""
    out = []
    for name, key, doc in (
            ("petcam_disk_free_bytes", "free_bytes", "Free bytes on the recordings' disk."),
            ("petcam_disk_total_bytes", "total_bytes", "Size of the recordings' disk."),
            ("petcam_recording_min_free_bytes", "min_free_bytes",
             "Free bytes a recording needs to start (PETCAM_RECORDING_MIN_FREE_BYTES).")):
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], float(disk[key]))
        out.append(family)
    return out


def merge(results: dict[str, tuple[bool, list[Metric]]], scrape_seconds: float) -> list[Metric]:
    """One family per name, samples of every camera in it (the exposition format wants that)."""
    up = GaugeMetricFamily("petcam_worker_up", "1 if the camera's media worker answered.",
                           labels=["camera"])
    merged: dict[str, Metric] = {}
    for camera, (answered, families) in results.items():
        up.add_metric([camera], 1.0 if answered else 0.0)
        for family in families:
            target = merged.setdefault(family.name,
                                       Metric(family.name, family.documentation, family.type))
            target.samples.extend(family.samples)
    scrape = GaugeMetricFamily("petcam_metrics_scrape_seconds",
                               "Time spent asking the media workers for this page.")
    scrape.add_metric([], scrape_seconds)
    return [up, scrape, *merged.values()]


async def metrics(request: HttpRequest) -> HttpResponse:
    if not await is_staff_or_loopback(request):
        return JsonResponse({"error": "forbidden",
                             "detail": "/metrics is served to loopback or to a staff token."},
                            status=403)
    start = time.monotonic()
    cameras = await camera_slugs()
    disk, *answers = await asyncio.gather(
        asyncio.to_thread(check_disk),
        *(_worker_families(slug, settings.PETCAM_METRICS_TIMEOUT) for slug in cameras))
    families = [*merge(dict(zip(cameras, answers, strict=True)), time.monotonic() - start),
                *disk_families(disk), *live_fanouts().metrics()]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    # django-prometheus and the process collectors live in the default registry.
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
