"""Checkpoints: exact resume, SIGKILL during a save, corrupt and mismatched checkpoints."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

import grpo_toy
from rftgym.trainers.checkpoint import Checkpointer, CheckpointError, CheckpointMismatchError
from rftgym.trainers.train import Trainer, train
from rftgym.trainers.train_config import TrainConfig

CACHE = grpo_toy.enable_compile_cache()
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
TIMING = ("time_", "tokens_per_s", "sample_tokens_per_s")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return {"model": grpo_toy.write_model(str(root / "model")),
            "other_model": grpo_toy.write_model(str(root / "other"), hidden=32),
            "dataset": grpo_toy.write_dataset(str(root / "letters.jsonl"))}


def config(toy, run_dir, **over):
    kw = dict(envs=[grpo_toy.env_spec_dict(toy["dataset"])], model=toy["model"], run_dir=str(run_dir), steps=6,
              prompts_per_step=2, group_size=4, max_new_tokens=4, max_prompt_len=32, learning_rate=1e-2,
              lora_rank=4, lora_alpha=8.0, microbatch_size=4, eval_limit=4, eval_every=3, eval_at_start=False,
              save_every=2, keep_checkpoints=2, lr_schedule="cosine", warmup_steps=2, progress=False, seed=5)
    kw.update(over)
    return TrainConfig(**kw)


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def without_timing(records):
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in records]


def lora_of(run_dir):
    ckpt = Checkpointer(str(run_dir), read_only=True)
    lora, meta = ckpt.restore_lora()
    ckpt.close()
    return meta["step"], jax.tree.map(np.asarray, lora)


def test_interrupted_and_resumed_run_equals_uninterrupted(toy, tmp_path):
    full = tmp_path / "full"
    train(config(toy, full))

    part = tmp_path / "part"
    trainer = Trainer(config(toy, part))
    for _ in range(3):  # stop after step 3 (a checkpoint was saved at step 2 only)
        trainer.logger.metrics(trainer.step + 1, trainer.train_one_step())
        if trainer.step % 2 == 0:
            trainer.save()
    trainer.close()
    assert Checkpointer(str(part), read_only=True).steps() == [2]
    assert len(lines(part / "metrics.jsonl")) == 3  # step 3 was logged but not checkpointed

    train(config(toy, part), resume=True)  # continues from step 2, redoing step 3
    assert without_timing(lines(part / "metrics.jsonl")) == without_timing(lines(full / "metrics.jsonl"))
    assert without_timing(lines(part / "eval.jsonl")) == without_timing(lines(full / "eval.jsonl"))
    step_a, lora_a = lora_of(full)
    step_b, lora_b = lora_of(part)
    assert step_a == step_b == 6
    for a, b in zip(jax.tree.leaves(lora_a), jax.tree.leaves(lora_b)):
        np.testing.assert_array_equal(a, b)  # bit-identical on CPU
    assert Checkpointer(str(part), read_only=True).steps() == [4, 6]  # keep_checkpoints=2


def test_mismatched_checkpoints_are_clear_errors(toy, tmp_path):
    run = tmp_path / "run"
    train(config(toy, run, steps=2, eval_every=0))
    with pytest.raises(CheckpointMismatchError, match=r"another LoRA shape .*LoRA rank: checkpoint 4 vs now 8"):
        Trainer(config(toy, run, steps=4, lora_rank=8), resume=True)
    with pytest.raises(CheckpointMismatchError, match=r"made for another model .*hidden_size: checkpoint 64 vs now 32"):
        Trainer(config(toy, run, steps=4, model=toy["other_model"]), resume=True)
    with pytest.raises(RuntimeError, match="already holds a run .*--resume"):
        Trainer(config(toy, run, steps=4))
    with pytest.raises(RuntimeError, match="no checkpoint in .* to resume from"):
        Trainer(config(toy, tmp_path / "empty", steps=4), resume=True)


def test_corrupt_checkpoint_is_a_clear_error(toy, tmp_path):
    run = tmp_path / "run"
    train(config(toy, run, steps=4, eval_every=0))
    latest = run / "checkpoints" / "4" / "state"
    damaged = 0
    for root, _, files in os.walk(latest):
        for name in files:
            if name.endswith(".json") or "manifest" in name or root.endswith("d"):
                with open(os.path.join(root, name), "r+b") as f:
                    f.truncate(max(0, os.path.getsize(os.path.join(root, name)) // 3))
                damaged += 1
    assert damaged
    with pytest.raises(CheckpointError, match=r"checkpoint 4 .* corrupt or incomplete.*delete .*checkpoints/4 to resume from step 2"):
        Trainer(config(toy, run, steps=6), resume=True)


KILL_SCRIPT = textwrap.dedent(r'''
    import os, sys, time
    sys.path.insert(0, TESTS_DIR)
    import grpo_toy
    grpo_toy.enable_compile_cache()
    from orbax.checkpoint._src.path import atomicity
    from rftgym.trainers.train import train
    from rftgym.trainers.train_config import TrainConfig

    real_finalize = atomicity.AtomicRenameTemporaryPath.finalize

    async def slow_finalize(self, *args, **kwargs):
        # the save of step 4 has written all its files but not committed them: stall here
        if os.path.basename(str(self.get_final())) == "4":
            open(MARKER, "w").write(str(self.get()))
            time.sleep(600)
        return await real_finalize(self, *args, **kwargs)

    atomicity.AtomicRenameTemporaryPath.finalize = slow_finalize
    train(TrainConfig.from_file(CONFIG))
''')


def test_sigkill_during_save_leaves_a_good_checkpoint(toy, tmp_path):
    run = tmp_path / "run"
    cfg = config(toy, run, steps=6, eval_every=0, save_every=2)
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(cfg.to_json())
    marker = tmp_path / "in_save"
    script = tmp_path / "kill_me.py"
    script.write_text(f"TESTS_DIR = {TESTS_DIR!r}\nCONFIG = {str(cfg_path)!r}\nMARKER = {str(marker)!r}\n"
                      + KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.time() < deadline, "the run never reached its second save"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    tmp_dir = marker.read_text()
    assert os.path.isdir(tmp_dir) and "tmp" in os.path.basename(tmp_dir)  # the uncommitted save
    assert Checkpointer(str(run), read_only=True).steps() == [2]  # the committed one survives

    result = train(cfg, resume=True)  # resumes from step 2 and finishes
    assert result["step"] == 6
    assert not os.path.exists(tmp_dir)  # leftover cleaned up
    assert [m["step"] for m in lines(run / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert Checkpointer(str(run), read_only=True).steps() == [4, 6]


def test_sigterm_saves_then_resume_finishes(toy, tmp_path):
    run = tmp_path / "run"
    cfg = config(toy, run, steps=200, eval_every=0, save_every=0)
    cfg_path = tmp_path / "run.json"
    cfg_path.write_text(cfg.to_json())
    env = dict(os.environ, PYTHONPATH=TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_COMPILATION_CACHE_DIR=CACHE)
    proc = subprocess.Popen([sys.executable, "-m", "rftgym.cli", "train", "--config", str(cfg_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 240
    while not (run / "metrics.jsonl").exists() or len(lines(run / "metrics.jsonl")) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert "SIGTERM" in err.decode() and "--resume" in err.decode()
    steps = Checkpointer(str(run), read_only=True).steps()
    assert len(steps) == 1 and steps[0] >= 2 and steps[0] == len(lines(run / "metrics.jsonl"))

    resumed = subprocess.run([sys.executable, "-m", "rftgym.cli", "train", "--resume", str(run), "--steps",
                              str(steps[0] + 2)], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [m["step"] for m in lines(run / "metrics.jsonl")] == list(range(1, steps[0] + 3))
