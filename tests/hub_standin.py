"""A local stand-in for the Hugging Face Hub's HTTP API: just enough of it for huggingface_hub's
create_repo, create_commit (regular uploads) and hf_hub_download, so the zoo's Hub code runs with
the real client and never touches the internet."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubStandIn:
    def __init__(self):
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo -> commit sha -> files
        self.heads: dict[str, str] = {}  # repo -> latest commit sha
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, payload, headers=None):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self):
                hub.requests.append(("POST", self.path))
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    d = json.loads(self._body())
                    repo = f"{d['organization']}/{d['name']}" if d.get("organization") else d["name"]
                    created = repo not in hub.repos
                    hub.repos.setdefault(repo, {})
                    return self._json(200 if created else 409, {"url": f"{hub.url}/{repo}", "name": repo},
                                      {} if created else {"X-Error-Message": "You already created this model repo"})
                if path == "/api/validate-yaml":  # the client checks a README's metadata before committing it
                    self._body()
                    return self._json(200, {"errors": [], "warnings": []})
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/(.+)", path)
                if m:
                    files = json.loads(self._body())["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/(.+)", path)
                if m:
                    repo = m.group(1)
                    if repo not in hub.repos:
                        return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    files = dict(hub.repos[repo].get(hub.heads.get(repo), {}))
                    for line in self._body().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    sha = hashlib.sha1(json.dumps(sorted((p, hashlib.sha256(c).hexdigest())
                                                         for p, c in files.items())).encode()
                                       + str(len(hub.repos[repo])).encode()).hexdigest()
                    hub.repos[repo][sha] = files
                    hub.heads[repo] = sha
                    return self._json(200, {"commitUrl": f"{hub.url}/{repo}/commit/{sha}", "commitOid": sha,
                                            "pullRequestUrl": None})
                self._json(404, {"error": f"stand-in does not know POST {path}"})

            def _resolve(self, with_body: bool):
                hub.requests.append((self.command, self.path))
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
                if not m or m.group(1) not in hub.repos:
                    return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                repo, revision, filename = m.groups()
                sha = hub.heads.get(repo) if revision == "main" else revision
                files = hub.repos[repo].get(sha)
                if files is None:
                    return self._json(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
                if filename not in files:
                    return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                content = files[filename]
                self.send_response(200)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("X-Repo-Commit", sha)
                self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
                self.end_headers()
                if with_body:
                    self.wfile.write(content)

            def do_HEAD(self):
                self._resolve(with_body=False)

            def do_GET(self):
                self._resolve(with_body=True)

        return Handler
