"""OpenTelemetry providers for the process, from settings (one place; apps only use the API).

The apps get tracers and meters from `opentelemetry.trace` / `opentelemetry.metrics` and never
import this module. `configure()` runs once per server process (ai4joy/serve.py) and installs
the SDK providers; with OTEL_EXPORTER=gcp it adds the Cloud Monitoring metric exporter (every
OTEL_METRIC_INTERVAL_S) and the Cloud Trace span exporter (batched, off the event loop). With
OTEL_EXPORTER empty nothing leaves the process: spans still get ids, so log lines correlate.
Tests install in-memory readers/exporters through the same function.

Incoming trace context: a W3C `traceparent` (browser or load balancer) wins over Google's
`X-Cloud-Trace-Context`; both are understood. Sampling follows the caller's sampled flag and
samples OTEL_TRACE_SAMPLE_RATIO of traces that start here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)
_installed: tuple[TracerProvider, MeterProvider] | None = None


def propagator() -> CompositePropagator:
    from opentelemetry.propagators.cloud_trace_propagator import CloudTraceFormatPropagator

    # Extracted in order, the last one found wins: traceparent over X-Cloud-Trace-Context.
    return CompositePropagator([CloudTraceFormatPropagator(), TraceContextTextMapPropagator()])


def _resource() -> Resource:
    resource = Resource.create({"service.name": settings.OTEL_SERVICE_NAME})
    if settings.OTEL_EXPORTER == "gcp":
        from opentelemetry.resourcedetector.gcp_resource_detector import GoogleCloudResourceDetector

        resource = resource.merge(GoogleCloudResourceDetector(raise_on_error=False).detect())
    return resource


def configure(
    *, metric_readers: Sequence[MetricReader] = (), span_processors: Sequence[SpanProcessor] = ()
) -> tuple[TracerProvider, MeterProvider]:
    """Install the SDK providers once per process; a second call returns the first ones."""
    global _installed
    if _installed is not None:
        return _installed
    readers, processors = list(metric_readers), list(span_processors)
    if settings.OTEL_EXPORTER == "gcp":
        from opentelemetry.exporter.cloud_monitoring import CloudMonitoringMetricsExporter
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        project = settings.GCP_PROJECT_ID or None
        # Several server processes per instance write the same metrics: a unique label each.
        exporter = CloudMonitoringMetricsExporter(project_id=project, add_unique_identifier=True)
        interval_ms = int(settings.OTEL_METRIC_INTERVAL_S * 1000)
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms))
        processors.append(BatchSpanProcessor(CloudTraceSpanExporter(project_id=project)))
    resource = _resource()
    sampler = ParentBased(TraceIdRatioBased(settings.OTEL_TRACE_SAMPLE_RATIO))
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    propagate.set_global_textmap(propagator())
    _installed = (tracer_provider, meter_provider)
    log.info(
        "telemetry configured",
        extra={"event": "telemetry_configured", "exporter": settings.OTEL_EXPORTER or "none"},
    )
    return _installed


def shutdown(timeout_s: float = 3.0) -> None:
    """Flush what is buffered (the last metrics interval, pending spans) before the process exits."""
    if _installed is None:
        return
    tracer_provider, meter_provider = _installed
    try:
        tracer_provider.force_flush(int(timeout_s * 1000))
        meter_provider.shutdown(timeout_millis=timeout_s * 1000)
    except Exception:
        log.warning("telemetry flush failed", exc_info=True, extra={"event": "telemetry_flush_failed"})
