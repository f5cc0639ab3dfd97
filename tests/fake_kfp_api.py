"""A Kubeflow Pipelines v2beta1 API in a thread, enough for `pipelines.submit` and the real kfp
client: health, pipelines (listed per namespace, AlreadyExists on a second upload of one name in
a namespace, as the real server), versions, experiments and runs, each request recorded."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


@dataclass
class FakeKfp:
    multi_user: bool = False
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    # method, path, query, headers (lower-case names)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, method: str, path: str, query: dict[str, str], body: bytes, ctype: str):
        if (method, path) == ("GET", f"{API}/healthz"):
            return 200, {"multi_user": self.multi_user}
        if (method, path) == ("GET", f"{API}/pipelines"):
            found = self.named(self.pipelines, query)
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        if (method, path) == ("POST", f"{API}/pipelines/upload"):
            namespace = query.get("namespace", "")
            if self.named(self.pipelines, query | {"filter": by_name(query["name"])}):
                return 409, {"code": 6, "message": f"AlreadyExists: {query['name']}"}
            return 200, self.add(self.pipelines, "pipeline", query["name"], namespace=namespace)
        if (method, path) == ("POST", f"{API}/pipelines/upload_version"):
            spec = uploaded_file(body, ctype)
            version = self.add(
                self.versions, "pipeline_version", query["name"], pipeline_id=query["pipelineid"]
            )
            version["package"] = spec
            return 200, {k: v for k, v in version.items() if k != "package"}
        if (method, path) == ("GET", f"{API}/experiments"):
            found = self.named(self.experiments, query)
            return 200, {"experiments": found} if found else {}
        if (method, path) == ("POST", f"{API}/experiments"):
            sent = json.loads(body)
            experiment = self.add(
                self.experiments,
                "experiment",
                sent["display_name"],
                namespace=sent.get("namespace") or "",
            )
            return 200, experiment
        if (method, path) == ("POST", f"{API}/runs"):
            run = json.loads(body) | {"run_id": f"run-{len(self.runs) + 1}"}
            self.runs.append(run)
            return 200, run
        return 404, {"message": f"fake KFP has no {method} {path}"}

    @staticmethod
    def named(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        """`items` in the query's namespace ("" = shared) whose display_name the filter names."""
        predicates = json.loads(query.get("filter", '{"predicates": []}'))["predicates"]
        names = {p["stringValue"] for p in predicates if p["key"] == "display_name"}
        namespace = query.get("namespace", "")
        return [
            item
            for item in items
            if item.get("namespace", "") == namespace
            and (not names or item["display_name"] in names)
        ]

    @staticmethod
    def add(items: list[dict[str, Any]], kind: str, name: str, **fields: Any) -> dict[str, Any]:
        item = {f"{kind}_id": f"{kind}-{len(items) + 1}", "display_name": name, **fields}
        items.append(item)
        return item


def by_name(name: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": 1, "key": "display_name", "stringValue": name}]}
    )


def uploaded_file(body: bytes, ctype: str) -> bytes:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
    (part,) = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition")]
    return part.get_payload(decode=True)


def serve(fake: FakeKfp) -> tuple[ThreadingHTTPServer, str]:
    """Start `fake` on a free loopback port; returns the server (shut it down) and its URL."""

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self, method: str) -> None:
            url = urlparse(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            fake.requests.append(
                {"method": method, "path": url.path, "query": query, "headers": headers}
            )
            status, answer = fake.answer(
                method, url.path, query, body, self.headers.get("Content-Type", "")
            )
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.handle_one("GET")

        def do_POST(self) -> None:  # noqa: N802
            self.handle_one("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"
