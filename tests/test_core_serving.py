"""Remote environments: an EnvServer on loopback and RemoteEnv clients."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

import rftgym
from rftgym import EnvServer, RemoteEnv, RemoteEnvError, TextEnv

ROWS = [{"messages": [{"role": "user", "content": f"Reply with w{i}"}], "ground_truth": f"w{i}"} for i in range(4)]


@pytest.fixture
def server():
    srv = EnvServer({"words": lambda: TextEnv(ROWS, "core_evaluators:exact_word")}).start()
    yield srv
    srv.close()


def test_remote_env_round_trip(server):
    env = RemoteEnv(server.url, "words")
    assert env.num_rows == 4
    obs, info = env.reset(seed=0, options={"index": 2})
    assert obs == ROWS[2]["messages"] and info["index"] == 2
    obs, reward, terminated, truncated, info = env.step("w2")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["evaluation"]["score"] == 1.0 and obs[-1]["content"] == "w2"
    with pytest.raises(RemoteEnvError, match="HTTP 400: RuntimeError: the episode is over"):
        env.step("again")
    env.close()
    assert server.sessions == {}


def test_group_env_over_a_server(server):
    envs = rftgym.make_group_env(lambda: RemoteEnv(server.url, "words"), num_prompts=2, group_size=2)
    obs, _ = envs.reset(seed=1)
    replies = [o[-1]["content"].split()[-1] for o in obs]
    replies[1] = "wrong"
    _, rewards, terminated, _, _ = envs.step(replies)
    np.testing.assert_array_equal(rewards, [1, 0, 1, 1])
    assert terminated.all()
    envs.close()


def test_server_refuses_unknown_envs_and_bad_requests(server):
    with pytest.raises(RemoteEnvError, match="has no env 'other'; it has \\['words'\\]"):
        RemoteEnv(server.url, "other")
    request = urllib.request.Request(server.url + "/sessions", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request)
    assert excinfo.value.code == 400 and "invalid JSON" in json.loads(excinfo.value.read())["error"]
    env = RemoteEnv(server.url, "words")
    env.reset(seed=0)
    with pytest.raises(RemoteEnvError, match="'action' must be a string"):
        env._call("POST", f"/sessions/{env.session}/step", {"action": 5})
    env.close()


def test_unreachable_server_is_a_clear_error():
    srv = EnvServer({"words": lambda: TextEnv(ROWS, "core_evaluators:exact_word")})
    url = srv.url
    srv.close()
    with pytest.raises(RemoteEnvError, match="cannot reach env server"):
        RemoteEnv(url, "words", timeout=2)


def test_serving_command_serves_registered_envs():
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "rftgym.serving", "--env", "rft/Math-v0", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("serving rft/Math-v0 on http://127.0.0.1:")
        env = RemoteEnv(f"http://127.0.0.1:{port}", "rft/Math-v0")
        obs, info = env.reset(seed=0)
        assert obs[-1]["role"] == "user" and env.num_rows > 0
        assert env.step("<answer>0</answer>")[2] is True
        env.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run([sys.executable, "-m", "rftgym.serving", "--env", "rft/Nope-v0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown env id(s) ['rft/Nope-v0']" in bad.stderr
