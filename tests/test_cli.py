"""The `rftgym` command: config files and flags, train -> eval -> export -> plot end to end on the
toy task, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import pytest

import grpo_toy
from rftgym.trainers.train_config import ConfigError, EnvSpec, TrainConfig, add_train_arguments, config_from_args

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
CACHE = grpo_toy.enable_compile_cache()


def rftgym(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_COMPILATION_CACHE_DIR=CACHE)
    return subprocess.run([sys.executable, "-m", "rftgym.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def parse(*argv):
    import argparse

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


# ----------------------------------------------------------------------------- configuration


def test_defaults_flags_and_file_precedence(tmp_path):
    cfg = parse()
    assert cfg.model == "smollm2-135m-instruct" and cfg.envs == [EnvSpec("rft/Math-v0", kwargs={"difficulty": 1})]
    assert (cfg.prompts_per_step, cfg.group_size, cfg.max_new_tokens) == (4, 8, 64)
    toml = tmp_path / "run.toml"
    toml.write_text('steps = 7\nlearning_rate = 1e-3\nlora_targets = ["q", "v"]\n\n'
                    '[[env]]\nid = "rft/Math-v0"\nweight = 3\nkwargs = { difficulty = 2 }\n\n'
                    '[[env]]\nid = "rft/JSONSchema-v0"\n')
    cfg = parse("--config", str(toml), "--steps", "9", "--no-share-prompt")
    assert cfg.steps == 9 and cfg.learning_rate == 1e-3 and cfg.lora_targets == ["q", "v"]
    assert not cfg.share_prompt
    assert [(e.id, e.weight, e.kwargs) for e in cfg.envs] == [("rft/Math-v0", 3.0, {"difficulty": 2}),
                                                               ("rft/JSONSchema-v0", 1.0, {})]
    cfg = parse("--env", "rft/Math-v0:0.25", "--env", "rft/Code-v0", "--env-kwargs", '{"difficulty": 1}',
                "--env-kwargs", "{}")
    assert [(e.id, e.weight, e.kwargs) for e in cfg.envs] == [("rft/Math-v0", 0.25, {"difficulty": 1}),
                                                              ("rft/Code-v0", 1.0, {})]
    as_json = tmp_path / "run.json"
    as_json.write_text(cfg.to_json())
    assert TrainConfig.from_file(str(as_json)) == cfg  # a saved config reads back identically


def test_bad_settings_name_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lerning_rate = 1e-3\n")
    with pytest.raises(ConfigError, match="unknown setting 'lerning_rate' \\(did you mean 'learning_rate'\\?\\)"):
        TrainConfig.from_file(str(bad))
    bad.write_text("steps = 'ten'\n")
    with pytest.raises(ConfigError, match="steps must be an integer, got 'ten'"):
        TrainConfig.from_file(str(bad))
    with pytest.raises(ConfigError, match="loss_type must be one of grpo, dapo, dr_grpo; got 'ppo'"):
        TrainConfig(loss_type="ppo")
    with pytest.raises(ConfigError, match="microbatch_size \\(6\\) must divide"):
        TrainConfig(microbatch_size=6)
    with pytest.raises(ConfigError, match="group_size must be >= 2"):
        TrainConfig(group_size=1)
    with pytest.raises(ConfigError, match="weight must be > 0"):
        parse("--env", "rft/Math-v0:0")
    with pytest.raises(ConfigError, match="one --env-kwargs per --env"):
        parse("--env", "a", "--env", "b", "--env", "c", "--env-kwargs", "{}", "--env-kwargs", "{}")


def test_cli_module_does_not_import_jax():
    code = ("import sys, rftgym.cli as c; c.build_parser(); "
            "assert 'jax' not in sys.modules and 'rftgym.trainers.train' not in sys.modules, sorted(sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    out = rftgym("--help")
    assert out.returncode == 0 and "train" in out.stdout and "export" in out.stdout


@pytest.mark.parametrize("args,message", [
    (["train", "--loss-type", "ppo"], "loss_type must be one of"),
    (["train", "--resume", "/nonexistent/run"], "no config.json there"),
    (["train", "--env", "rft/Nope-v0", "--model", "/nonexistent/model", "--steps", "1"], "does not exist"),
    (["eval", "--env", "rft/Nope-v0", "--model", "/nonexistent/model"], "does not exist"),
    (["plot", "/nonexistent/run"], "has no metrics.jsonl"),
    (["export", "/nonexistent/run", "--out", "/tmp/x"], "is not a training run directory"),
])
def test_bad_input_is_one_line_not_a_traceback(args, message):
    out = rftgym(*args)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0


# ----------------------------------------------------------------------------- end to end


def test_train_eval_export_plot(tmp_path):
    model = grpo_toy.write_model(str(tmp_path / "model"))
    dataset = grpo_toy.write_dataset(str(tmp_path / "letters.jsonl"))
    kwargs = grpo_toy.env_spec_dict(dataset)["kwargs"]
    env_kwargs = json.dumps(kwargs)
    toml_kwargs = "{ " + ", ".join(f'{k} = "{v}"' for k, v in kwargs.items()) + " }"
    toml = tmp_path / "toy.toml"
    toml.write_text(f'model = "{model}"\nsteps = 3\nprompts_per_step = 2\ngroup_size = 4\nmax_new_tokens = 4\n'
                    'max_prompt_len = 32\nlora_rank = 4\neval_limit = 8\nsave_every = 2\nbeta = 0.05\n'
                    'microbatch_size = 4\nprogress = true\n\n'
                    f'[[env]]\nid = "rft/Custom-v0"\nkwargs = {toml_kwargs}\n')
    run = tmp_path / "run"
    out = rftgym("train", "--config", str(toml), "--run-dir", str(run), "--learning-rate", "1e-2")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "held-out reward" in out.stdout
    assert "reward=" in out.stderr and "kl=" in out.stderr and "tok/s=" in out.stderr  # the progress bar
    saved = json.loads((run / "config.json").read_text())
    assert saved["learning_rate"] == 1e-2 and saved["steps"] == 3
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for key in ("reward", "reward_std", "frac_reward_zero_std", "kl", "clip_ratio_low", "clip_ratio_high",
                "entropy", "reply_length", "reply_length_max", "truncated_frac", "tokens_per_s",
                "time_sample_s", "time_score_s", "time_update_s", "grad_norm", "learning_rate"):
        assert key in metrics[0], key
    evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, 3] and evals[-1]["n"] == 8

    # eval of the run directory (latest checkpoint) reproduces the run's own final evaluation
    out = rftgym("eval", "--env", "rft/Custom-v0", "--env-kwargs", env_kwargs, "--model", str(run),
                 "--max-new-tokens", "4", "--limit", "8", "--json", "--samples", str(tmp_path / "ckpt.jsonl"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "step 3" in result["model"]
    assert result["envs"]["rft/Custom-v0"]["reward"] == evals[-1]["reward"]
    assert result["envs"]["rft/Custom-v0"]["n"] == 8

    # the base model scores the same as the run's step-0 evaluation
    out = rftgym("eval", "--env", "rft/Custom-v0", "--env-kwargs", env_kwargs, "--model", model,
                 "--max-new-tokens", "4", "--limit", "8", "--samples", str(tmp_path / "base.jsonl"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rft/Custom-v0" in out.stdout and f"{evals[0]['reward']:.3f}" in out.stdout
    ckpt_rows = [json.loads(line) for line in (tmp_path / "ckpt.jsonl").read_text().splitlines()]
    base_rows = [json.loads(line) for line in (tmp_path / "base.jsonl").read_text().splitlines()]
    assert [r["row"] for r in ckpt_rows] == list(range(8)) and ckpt_rows[0]["env"] == "rft/Custom-v0"
    assert [r["replies"] for r in ckpt_rows] != [r["replies"] for r in base_rows]  # training changed the policy

    # exports score like the checkpoint they came from: the same greedy reply and reward on every row
    for mode in ("merged", "adapter"):
        folder = tmp_path / mode
        out = rftgym("export", str(run), "--out", str(folder), f"--{mode}")
        assert out.returncode == 0, out.stderr[-3000:]
        samples = tmp_path / f"{mode}.jsonl"
        out = rftgym("eval", "--env", "rft/Custom-v0", "--env-kwargs", env_kwargs, "--model", str(folder),
                     "--max-new-tokens", "4", "--limit", "8", "--json", "--samples", str(samples))
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads(out.stdout.strip().splitlines()[-1])["envs"]["rft/Custom-v0"]["reward"] == evals[-1]["reward"]
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        assert [(r["replies"], r["reward"]) for r in rows] == [(r["replies"], r["reward"]) for r in ckpt_rows], mode
    assert (tmp_path / "merged" / "config.json").exists()
    assert (tmp_path / "adapter" / "adapter_config.json").exists()

    out = rftgym("plot", str(run))
    assert out.returncode == 0, out.stderr[-3000:]
    png = run / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
