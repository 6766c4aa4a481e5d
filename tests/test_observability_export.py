"""Spans leave `inventory serve` over OTLP/HTTP (protobuf) and decode: a real
HTTP receiver in the test plays the collector (Jaeger in the compose file).
Logs come out as JSON lines when asked."""
from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)



class OtlpReceiver(ThreadingHTTPServer):
    """Accepts POST /v1/traces like an OTLP/HTTP collector and keeps the spans."""

    def __init__(self):
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.content_types: set[str] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[dict, object]]:
        """(resource attributes, span) for every span received."""
        found = []
        with self.lock:
            for request in self.requests:
                for resource_spans in request.resource_spans:
                    resource = {a.key: a.value.string_value
                                for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        found += [(resource, span) for span in scope_spans.spans]
        return found


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            self.server.requests.append(request)
            self.server.paths.append(self.path)
            self.server.content_types.add(self.headers.get("Content-Type"))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def receiver():
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_spans_exported_over_otlp_http(receiver, start_api_server, graphql,
                                             stocked_level):
    with start_api_server("otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                          OTEL_SERVICE_NAME="inventory-under-test",
                          OTEL_BSP_SCHEDULE_DELAY="100", INVENTORY_LOG_FORMAT="json",
                          INVENTORY_LOG_LEVEL="INFO") as api:
        client = graphql(api)
        sku, code = await stocked_level(3, client=client)
        trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
        response = await client.post(
            "query Level($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) "
            "{ onHand } }", {"s": sku, "c": code},
            headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert response.status_code == 200, response.text
        assert response.headers["x-trace-id"] == trace_id
        deadline = time.monotonic() + 15
        while True:
            ours = [(r, s) for r, s in receiver.spans() if s.trace_id.hex() == trace_id]
            names = {s.name for _, s in ours}
            if "query Level" in names and any(s.kind == s.SPAN_KIND_SERVER for _, s in ours):
                break
            assert time.monotonic() < deadline, f"spans not received: {names}"
            await asyncio.sleep(0.1)
    log = api.log_path.read_text()
    assert set(receiver.paths) == {"/v1/traces"}
    assert receiver.content_types == {"application/x-protobuf"}
    spans = {s.span_id: s for _, s in ours}
    assert all(r["service.name"] == "inventory-under-test" for r, _ in ours)
    server = next(s for s in spans.values() if s.kind == s.SPAN_KIND_SERVER)
    assert server.parent_span_id.hex() == parent_id
    operation = next(s for s in spans.values() if s.name == "query Level")
    assert operation.parent_span_id == server.span_id
    attributes = {a.key: a.value for a in operation.attributes}
    assert attributes["graphql.operation.type"].string_value == "query"
    sql = [s for s in spans.values() if s.parent_span_id == operation.span_id]
    assert sql and all(any(a.key == "db.system" and a.value.string_value == "postgresql"
                           for a in s.attributes) for s in sql)
    # The API key the requests sent is in no exported span (the ASGI
    # instrumentation records no request headers) and in no log line.
    secret = api.api_key.split("_", 2)[2]  # inv_<ids>_<secret>; the secret may contain "_"
    assert api.api_key and not any(secret.encode() in s.SerializeToString()
                                   for _, s in receiver.spans())
    assert secret not in log

    # The log (INVENTORY_LOG_FORMAT=json): uvicorn's and ours, one JSON object a line.
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["logger"].startswith("uvicorn") for r in records), records
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
