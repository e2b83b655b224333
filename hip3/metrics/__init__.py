"""Observability: Prometheus metrics, structured logs, the live status view."""

from hip3.metrics.exporter import (
    LATENCY,
    DispatcherCollector,
    LatencyRecorder,
    MetricsServer,
    observe_pong_rtt,
    observe_post_latency,
    start_metrics,
)

__all__ = [
    "LATENCY",
    "DispatcherCollector",
    "LatencyRecorder",
    "MetricsServer",
    "observe_pong_rtt",
    "observe_post_latency",
    "start_metrics",
]
