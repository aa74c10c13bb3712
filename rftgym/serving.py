"""Remote environments: serve rftgym envs over HTTP and use them from another machine.

Rollout scoring can be heavy (sandboxed code, solvers, tool worlds); an env server moves it off
the training host. The server exposes a fixed set of environments chosen when it starts — a
client picks one by name but cannot pass constructor arguments, so no client can make the server
import code or open files. Every message is JSON.

Server::

    python -m rftgym.serving --env rft/Code-v0 --env rft/Math-v0 --host 127.0.0.1 --port 8765

Client::

    env = rftgym.RemoteEnv("http://127.0.0.1:8765", "rft/Math-v0")
    messages, info = env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step("<answer>7</answer>")

``RemoteEnv`` is a Gymnasium env with the same observation/action spaces, so
``rftgym.make_group_env(lambda: RemoteEnv(url, "rft/Code-v0"), 4, 8)`` spreads a group's
scoring over a server.

Endpoints: ``GET /envs`` (names and dataset sizes); ``POST /sessions {"env"}`` -> ``{"session"}``;
``POST /sessions/<id>/reset {"seed", "options"}``; ``POST /sessions/<id>/step {"action"}``;
``DELETE /sessions/<id>``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

import gymnasium as gym

from rftgym.spaces import ChatSpace, TextSpace

MAX_REQUEST_BYTES = 8 << 20


class RemoteEnvError(RuntimeError):
    """The env server refused a request or could not be reached."""


class EnvServer:
    """An HTTP server for a fixed set of environments.

    Args:
        envs: ``{name: factory}`` where ``factory()`` returns a fresh env, or a list of registered
            ids (made with ``gym.make(id)``).
        max_sessions: open sessions allowed at once (each holds one env instance).
    """

    def __init__(self, envs: Mapping[str, Callable[[], gym.Env]] | list[str], host: str = "127.0.0.1",
                 port: int = 0, max_sessions: int = 1024):
        if isinstance(envs, (list, tuple)):
            envs = {env_id: (lambda env_id=env_id: gym.make(env_id, disable_env_checker=True)) for env_id in envs}
        self.factories = dict(envs)
        self.max_sessions = max_sessions
        self.sessions: dict[str, gym.Env] = {}
        self.lock = threading.Lock()
        self.sizes = {name: _dataset_size(factory()) for name, factory in self.factories.items()}
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "EnvServer":
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="rftgym-env-server")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread = None
        self.httpd.server_close()
        with self.lock:
            for env in self.sessions.values():
                env.close()
            self.sessions.clear()

    # --- request handling ------------------------------------------------------------------
    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        if method == "GET" and parts == ["envs"]:
            return 200, {"envs": self.sizes}
        if method == "POST" and parts == ["sessions"]:
            name = body.get("env")
            if name not in self.factories:
                return 404, {"error": f"unknown env {name!r}; this server has {sorted(self.factories)}"}
            with self.lock:
                if len(self.sessions) >= self.max_sessions:
                    return 429, {"error": f"too many open sessions (max {self.max_sessions})"}
                session = uuid.uuid4().hex
                self.sessions[session] = self.factories[name]()
            return 200, {"session": session}
        if len(parts) >= 2 and parts[0] == "sessions":
            with self.lock:
                env = self.sessions.get(parts[1])
            if env is None:
                return 404, {"error": f"unknown session {parts[1]!r}"}
            if method == "DELETE" and len(parts) == 2:
                with self.lock:
                    self.sessions.pop(parts[1], None)
                env.close()
                return 200, {}
            if method == "POST" and parts[2:] == ["reset"]:
                obs, info = env.reset(seed=body.get("seed"), options=body.get("options"))
                return 200, {"observation": obs, "info": info}
            if method == "POST" and parts[2:] == ["step"]:
                action = body.get("action")
                if not isinstance(action, str):
                    return 400, {"error": "'action' must be a string"}
                obs, reward, terminated, truncated, info = env.step(action)
                return 200, {"observation": obs, "reward": reward, "terminated": terminated,
                             "truncated": truncated, "info": info}
        return 404, {"error": f"no route {method} {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet by default
                pass

            def _respond(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload, default=_jsonable).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _dispatch(self, method: str) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > MAX_REQUEST_BYTES:
                        return self._respond(413, {"error": f"request larger than {MAX_REQUEST_BYTES} bytes"})
                    body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                    if not isinstance(body, dict):
                        return self._respond(400, {"error": "the request body must be a JSON object"})
                    status, payload = server.handle(method, self.path, body)
                except json.JSONDecodeError as exc:
                    status, payload = 400, {"error": f"invalid JSON: {exc}"}
                except Exception as exc:  # noqa: BLE001 - report env errors to the client
                    status, payload = 400, {"error": f"{type(exc).__name__}: {exc}"}
                self._respond(status, payload)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

        return Handler


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _dataset_size(env: gym.Env) -> int | None:
    dataset = getattr(env.unwrapped, "dataset", None)
    size = len(dataset) if dataset is not None else None
    env.close()
    return size


class RemoteEnv(gym.Env):
    """A client for one environment session on an ``EnvServer``."""

    metadata = {"render_modes": []}

    def __init__(self, url: str, env: str, timeout: float = 300.0):
        self.url = url.rstrip("/")
        self.env_name = env
        self.timeout = timeout
        self.observation_space = ChatSpace()
        self.action_space = TextSpace()
        sizes = self._call("GET", "/envs")["envs"]
        if env not in sizes:
            raise RemoteEnvError(f"server {self.url} has no env {env!r}; it has {sorted(sizes)}")
        self.num_rows = sizes[env]
        self.session = self._call("POST", "/sessions", {"env": env})["session"]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except (ValueError, AttributeError):
                detail = exc.reason
            raise RemoteEnvError(f"{method} {self.url}{path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteEnvError(f"cannot reach env server {self.url}: {exc}") from None

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        reply = self._call("POST", f"/sessions/{self.session}/reset", {"seed": seed, "options": options})
        return reply["observation"], reply["info"]

    def step(self, action: str):
        reply = self._call("POST", f"/sessions/{self.session}/step", {"action": action})
        return (reply["observation"], float(reply["reward"]), bool(reply["terminated"]),
                bool(reply["truncated"]), reply["info"])

    def close(self) -> None:
        session, self.session = getattr(self, "session", None), None
        if session:
            try:
                self._call("DELETE", f"/sessions/{session}")
            except RemoteEnvError:
                pass


def main(argv: list[str] | None = None) -> None:
    """``python -m rftgym.serving --env ID [--env ID ...] [--host H] [--port P]``."""
    import argparse

    import rftgym  # noqa: F401 - registers the rft/* ids

    parser = argparse.ArgumentParser(prog="python -m rftgym.serving", description="Serve rftgym environments over HTTP.")
    parser.add_argument("--env", action="append", required=True, help="registered env id (repeatable)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--max-sessions", type=int, default=1024)
    args = parser.parse_args(argv)
    unknown = [env_id for env_id in args.env if env_id not in gym.registry]
    if unknown:
        parser.error(f"unknown env id(s) {unknown}; see rftgym.list_envs()")
    server = EnvServer(args.env, host=args.host, port=args.port, max_sessions=args.max_sessions)
    print(f"serving {', '.join(args.env)} on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
