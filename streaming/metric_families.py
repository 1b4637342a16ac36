"""Prometheus families as plain values: built in the worker, sent as JSON, rebuilt for /metrics.

The media worker may be another process behind Redis, so its figures travel
over the channel layer as JSON (`to_json`) and the web tier's /metrics
(petcam_site/metrics.py) turns them back into families (`from_json`).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


def gauge(name: str, doc: str, value: float | None, camera: str,
          families: list[Metric]) -> None:
    """Append a one-sample gauge labelled by camera (nothing when the value is unknown)."""
    if value is None:
        return
    family = GaugeMetricFamily(name, doc, labels=["camera"])
    family.add_metric([camera], float(value))
    families.append(family)


def counter(name: str, doc: str, values: dict[tuple[str, ...], float], camera: str,
            families: list[Metric], labels: tuple[str, ...] = ()) -> None:
    """Append a counter labelled by camera and `labels` (one sample per key of `values`)."""
    family = CounterMetricFamily(name, doc, labels=["camera", *labels])
    for key, value in values.items():
        family.add_metric([camera, *key], float(value))
    families.append(family)


def to_json(families: list[Metric]) -> list[dict[str, Any]]:
    """Families as JSON for the channel layer (msgpack over Redis)."""
    return [{"name": f.name, "type": f.type, "help": f.documentation,
             "samples": [[s.name, dict(s.labels), s.value] for s in f.samples]}
            for f in families]


def from_json(data: list[dict[str, Any]]) -> list[Metric]:
    families = []
    for item in data:
        family = Metric(item["name"], item["help"], item["type"])
        for name, labels, value in item["samples"]:
            family.add_sample(name, labels, float(value))
        families.append(family)
    return families
