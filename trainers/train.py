"""The GRPO training loop: rollouts -> advantages -> jit-compiled update, with evaluation,
logging and checkpoints.

Files written to ``RUN_DIR``:

    config.json      the full TrainConfig (the base of ``--resume``)
    metrics.jsonl    one line per step: reward (overall, per env, per evaluator metric),
                     frac_reward_zero_std, kl, clip ratios, entropy, reply lengths, truncation,
                     tokens/s, seconds in sampling / scoring / update
    eval.jsonl       one line per evaluation and env: reward and accuracy on the test split
    samples.jsonl    every ``log_samples_every`` steps: prompts, replies and rewards
    checkpoints/     orbax checkpoints (see checkpoint.py)

Randomness is a pure function of (seed, step): the data order position, the PRNG key and the
optimizer state in a checkpoint are all a resume needs to continue exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from typing import Any

import numpy as np

from .train_config import TrainConfig

SIGNAL_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class TrainingInterrupted(Exception):
    """Raised after a SIGINT/SIGTERM once the checkpoint has been written."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; checkpoint saved")
        self.signum, self.step = signum, step


# ----------------------------------------------------------------------------- run-dir files


def _atomic_write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _truncate_jsonl(path: str, last_step: int) -> None:
    """Drop lines logged after `last_step` (they are redone after a resume)."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line).get("step", 0) <= last_step:
                    kept.append(line if line.endswith("\n") else line + "\n")
            except json.JSONDecodeError:
                continue  # a line cut by a kill
    _atomic_write(path, "".join(kept))


class RunLogger:
    """metrics.jsonl / eval.jsonl / samples.jsonl plus optional TensorBoard and W&B."""

    def __init__(self, run_dir: str, cfg: TrainConfig, enabled: bool = True):
        self.run_dir = run_dir
        self.enabled = enabled  # only process 0 writes in a multi-host run
        self.tb = None
        self.wandb = None
        if not enabled:
            return
        if cfg.tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise RuntimeError("--tensorboard needs the 'tensorboardX' package: pip install tensorboardX") from None
            self.tb = SummaryWriter(os.path.join(run_dir, "tensorboard"))
        if cfg.wandb_project:
            try:
                import wandb
            except ImportError:
                raise RuntimeError("--wandb-project needs the 'wandb' package: pip install wandb") from None
            self.wandb = wandb.init(project=cfg.wandb_project, config=cfg.to_dict(),
                                    dir=run_dir, resume="allow")

    def _append(self, name: str, record: dict) -> None:
        if not self.enabled:
            return
        with open(os.path.join(self.run_dir, name), "a") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self._append("metrics.jsonl", {"step": step, **values})
        self._scalars(step, {f"train/{k}": v for k, v in values.items()})

    def evaluation(self, step: int, env_id: str, values: dict[str, Any]) -> None:
        self._append("eval.jsonl", {"step": step, "env": env_id, **values})
        self._scalars(step, {f"eval/{env_id}/{k}": v for k, v in values.items() if isinstance(v, (int, float))})

    def samples(self, step: int, records: list[dict]) -> None:
        self._append("samples.jsonl", {"step": step, "samples": records})

    def _scalars(self, step: int, values: dict[str, float]) -> None:
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(values, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


# ----------------------------------------------------------------------------- the trainer


def initialize_distributed(cfg: TrainConfig) -> None:
    """`jax.distributed.initialize()` for a multi-host run (idempotent).

    Every process runs the same loop with the same seed: prompts, sampling keys and therefore
    batches are identical on all hosts, while the sampler and the update are single SPMD
    programs over the global mesh (each device computes its shard). Only process 0 writes logs;
    orbax coordinates checkpoint writes across processes.
    """
    import jax

    if jax.distributed.is_initialized():
        return
    kwargs = {k: getattr(cfg, k) for k in ("coordinator_address", "num_processes", "process_id")
              if getattr(cfg, k) is not None}
    jax.distributed.initialize(**kwargs)


def optimizer_for(cfg: TrainConfig):
    """(optax optimizer, lr schedule) of a run: AdamW + clipping over steps x num_iterations updates."""
    from . import grpo

    schedule = grpo.make_schedule(cfg.learning_rate, cfg.steps * cfg.num_iterations, cfg.warmup_steps,
                                  cfg.lr_schedule, cfg.min_lr_ratio)
    optimizer = grpo.make_optimizer(schedule, weight_decay=cfg.weight_decay, b1=cfg.adam_b1,
                                    b2=cfg.adam_b2, eps=cfg.adam_eps, max_grad_norm=cfg.max_grad_norm)
    return optimizer, schedule


class Trainer:
    """Builds everything a run needs from a TrainConfig; `fit()` runs it.

    Args:
        cfg: the run's settings.
        resume: continue from the latest checkpoint in ``cfg.run_dir``.
        model: an already loaded `loading.LoadedModel` (default: ``load_model(cfg.model)``).
    """

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, model=None):
        import jax

        from . import grpo, sharding
        from .checkpoint import Checkpointer, fingerprint
        from .loading import load_model
        from .lora import LoraConfig, init_lora
        from .rollout import (ChatEncoder, DataOrder, EnvGroups, RolloutWorker, make_executor,
                              train_kwargs_for)

        self.cfg = cfg
        self.run_dir = cfg.run_dir
        if cfg.distributed:
            initialize_distributed(cfg)
        self.is_primary = jax.process_index() == 0
        # The model loads first: a bad --model fails before the checkpoint manager starts threads.
        self.model = model if model is not None else load_model(cfg.model, dtype=cfg.dtype)
        os.makedirs(self.run_dir, exist_ok=True)
        self.checkpointer = Checkpointer(self.run_dir, keep=cfg.keep_checkpoints)
        existing = self.checkpointer.latest_step()
        problem = None
        if resume and existing is None:
            problem = f"--resume: no checkpoint in {self.run_dir!r} to resume from"
        if not resume and existing is not None:
            problem = (f"{self.run_dir!r} already holds a run (checkpoint at step {existing}); "
                       "continue it with --resume or choose another --run-dir")
        if problem:
            self.checkpointer.close()
            raise RuntimeError(problem)
        if not resume and self.is_primary:
            for name in ("metrics.jsonl", "eval.jsonl", "samples.jsonl"):
                if os.path.exists(os.path.join(self.run_dir, name)):
                    os.remove(os.path.join(self.run_dir, name))

        # adapters, optimizer, mesh
        mcfg = self.model.cfg
        self.lora_cfg = LoraConfig(rank=cfg.lora_rank, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                                   targets=tuple(cfg.lora_targets))
        self.mesh = sharding.make_mesh(cfg.mesh_data, cfg.mesh_fsdp, cfg.mesh_tensor)
        self.rows = sharding.RowSharding(self.mesh)
        self.rows.check(cfg.batch_size, "batch (prompts_per_step x group_size)")
        self.rows.check(cfg.effective_microbatch, "microbatch")
        self.base_params = sharding.shard_params(self.mesh, self.model.params)
        self.root_key = jax.random.key(cfg.seed)
        lora = init_lora(mcfg, self.lora_cfg, jax.random.fold_in(self.root_key, 1_000_001))
        self.optimizer, self.schedule = optimizer_for(cfg)
        state = grpo.init_train_state(lora, self.optimizer)
        self.state, self.state_shardings = sharding.shard_train_state(self.mesh, state, self.optimizer)
        self.fingerprint = fingerprint(cfg.model, dataclasses.asdict(mcfg),
                                       {"rank": cfg.lora_rank, "alpha": cfg.lora_alpha,
                                        "targets": list(cfg.lora_targets)}, lora)

        # environments
        self.executor = make_executor(cfg.executor)
        self.env_ids = [spec.id for spec in cfg.envs]
        self.groups = [EnvGroups(spec.id, train_kwargs_for(spec), cfg.group_size, self.executor)
                       for spec in cfg.envs]
        self.multi_turn = any(g.multi_turn for g in self.groups)
        self.order = DataOrder([g.size for g in self.groups], [s.weight for s in cfg.envs], cfg.seed,
                               shuffle=cfg.shuffle_data)
        self._eval_groups: list | None = None

        # policy side
        self.encoder = ChatEncoder(self.model.tokenizer, cfg.max_prompt_len)
        self.sampler = sharding.make_sampler(mcfg, self.model.tokenizer, self.mesh,
                                             max_prompt_len=self._sampler_prompt_len(),
                                             decode_dtype=cfg.sample_dtype)
        self.region_cap = cfg.max_new_tokens if not self.multi_turn else cfg.max_episode_tokens
        self.worker = RolloutWorker(self.encoder, self.sampler, self.base_params,
                                    lora_scale=self.lora_cfg.scale)
        loss_cfg = grpo.LossConfig(loss_type=cfg.loss_type, epsilon=cfg.epsilon, epsilon_high=cfg.clip_high,
                                   beta=cfg.beta, max_completion_length=self.region_cap,
                                   use_old_logprobs=cfg.num_iterations > 1, compute_kl=cfg.log_kl,
                                   temperature=cfg.temperature)
        self.update_group = cfg.group_size if cfg.share_prompt else 1  # rows that stay together in the update
        self.train_step = grpo.make_train_step(
            mcfg, loss_cfg, self.optimizer, self.schedule, lora_scale=self.lora_cfg.scale,
            microbatch_size=cfg.effective_microbatch, remat=cfg.gradient_checkpointing,
            lora_dropout=cfg.lora_dropout, group_size=self.update_group,
            unroll_layers=cfg.layer_loop == "unroll" or (cfg.layer_loop == "auto" and cfg.dtype == "bfloat16"),
            row_sharding=self.rows if self.rows.size > 1 else None,
            state_sharding=self.state_shardings, base_sharding=sharding.param_shardings(self.mesh, self.base_params))
        # groups with all advantages 0 have no gradient without a KL term: the update skips them
        self.skip_zero_advantage = cfg.skip_zero_advantage and cfg.beta == 0
        self.logprob_fn = (grpo.make_logprob_fn(mcfg, lora_scale=self.lora_cfg.scale,
                                                microbatch_size=cfg.effective_microbatch,
                                                group_size=self.update_group,
                                                temperature=cfg.temperature)
                           if cfg.num_iterations > 1 else None)
        self.pad_id = self._pad_id()
        self.step = 0
        self.last_eval_step = -1
        if resume:
            self._restore()
        elif self.is_primary:
            _atomic_write(os.path.join(self.run_dir, "config.json"), cfg.to_json())
        self.logger = RunLogger(self.run_dir, cfg, enabled=self.is_primary)
        self._stop_signal: int | None = None

    # ------------------------------------------------------------------------------------
    def _sampler_prompt_len(self) -> int:
        if not self.multi_turn:
            return self.cfg.max_prompt_len
        return self.cfg.max_prompt_len + self.cfg.max_episode_tokens

    def _pad_id(self) -> int:
        tok = self.model.tokenizer
        for cand in (tok.pad_token_id, self.model.cfg.pad_token_id, tok.eos_token_id):
            if isinstance(cand, int):
                return cand
        return 0

    def _meta(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "data_order": self.order.state_dict(),
                "config": self.cfg.to_dict(), "last_eval_step": self.last_eval_step}

    def save(self) -> None:
        import jax

        state = dict(self.state)
        state["rng"] = jax.random.key_data(self.root_key)
        self.checkpointer.save(self.step, state, self._meta())

    def _restore(self) -> None:
        import jax

        from .checkpoint import abstract_like

        state = dict(self.state)
        state["rng"] = jax.random.key_data(self.root_key)
        shardings = dict(self.state_shardings)
        shardings["rng"] = None
        target = abstract_like(state)
        restored, meta = self.checkpointer.restore(target, expect=self.fingerprint)
        self.root_key = jax.random.wrap_key_data(restored.pop("rng"))
        self.state = jax.device_put(restored, self.state_shardings)
        try:
            self.order.load_state_dict(meta["data_order"])
        except ValueError as e:
            from .checkpoint import CheckpointMismatchError

            raise CheckpointMismatchError(str(e)) from None
        self.step = int(meta["step"])
        self.last_eval_step = int(meta.get("last_eval_step", -1))
        if self.is_primary:
            for name in ("metrics.jsonl", "eval.jsonl", "samples.jsonl"):
                _truncate_jsonl(os.path.join(self.run_dir, name), self.step)
            _atomic_write(os.path.join(self.run_dir, "config.json"), self.cfg.to_json())

    # ------------------------------------------------------------------------------------
    def eval_groups(self):
        from .rollout import EnvGroups, eval_kwargs_for

        if self._eval_groups is None:
            self._eval_groups = []
            for spec in self.cfg.envs:
                kwargs, held_out = eval_kwargs_for(spec)
                if not held_out:
                    print(f"note: {spec.id} has no test split; evaluating on its training rows "
                          "(set eval_kwargs in the config to choose other rows)", file=sys.stderr)
                self._eval_groups.append(EnvGroups(spec.id, kwargs, 1, self.executor))
        return self._eval_groups

    def evaluate(self) -> dict[str, dict[str, Any]]:
        """Score the current policy on every env's test split; logs to eval.jsonl."""
        import jax

        from .evaluate import evaluate_groups

        results = {}
        key = jax.random.fold_in(self.root_key, 2_000_003 + self.step)
        for env_id, groups in zip(self.env_ids, self.eval_groups()):
            t0 = time.perf_counter()
            summary, _ = evaluate_groups(self.worker, groups, self.state["lora"], key,
                                         limit=self.cfg.eval_limit, batch_size=self.cfg.eval_batch_size,
                                         temperature=self.cfg.eval_temperature,
                                         max_new_tokens=self.cfg.max_new_tokens)
            summary["time_s"] = time.perf_counter() - t0
            results[env_id] = summary
            self.logger.evaluation(self.step, env_id, summary)
        self.last_eval_step = self.step
        return results

    def train_one_step(self) -> dict[str, float]:
        """Collect rollouts and update; returns the step's metrics."""
        import jax

        from .grpo import compute_advantages, skip_plan
        from .rollout import SamplingSettings, pack_batch, rollout_metrics

        cfg = self.cfg
        step = self.step + 1
        t_start = time.perf_counter()
        rows = self.order.next_rows(step, cfg.prompts_per_step)
        key = jax.random.fold_in(self.root_key, step)
        settings = SamplingSettings(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k)
        episodes, timings = self.worker.run(self.groups, rows, cfg.group_size, self.state["lora"],
                                            jax.random.fold_in(key, 0), settings,
                                            reset_seed=(cfg.seed * 1_000_003 + step * 7_919) % (2**31 - 1))
        rewards = np.array([e.reward for e in episodes], np.float32)
        advantages, zero_std = compute_advantages(rewards, cfg.group_size, cfg.advantage)
        batch = pack_batch(episodes, self.pad_id, max_prompt_len=cfg.max_prompt_len,
                           max_region=self.region_cap, mask_truncated=cfg.mask_truncated)
        if cfg.drop_zero_variance_groups:
            dropped = np.repeat(zero_std, cfg.group_size)
            batch["loss_mask"][dropped] = 0.0
        batch["advantages"] = advantages
        active = None
        if self.skip_zero_advantage:
            order, active = skip_plan(advantages, batch["loss_mask"], self.update_group, cfg.effective_microbatch)
            batch = {k: v[order] for k, v in batch.items()}
        sampler_logprobs = batch.pop("sampler_logprobs")
        device_batch = self.rows.put(batch)
        if active is not None:
            device_batch["active_microbatches"] = np.int32(active)

        t_update = time.perf_counter()
        if self.logprob_fn is not None:
            device_batch["old_logprobs"] = self.logprob_fn(
                self.state["lora"], self.base_params, device_batch["tokens"], device_batch["attention_mask"],
                int(batch["loss_mask"].shape[1]))
        update_metrics = []
        for it in range(cfg.num_iterations):
            self.state, m = self.train_step(self.state, self.base_params, device_batch,
                                            jax.random.fold_in(key, 1 + it))
            update_metrics.append(m)
        update_metrics = jax.device_get(update_metrics)
        t_end = time.perf_counter()

        metrics = rollout_metrics(episodes, self.env_ids, cfg.group_size, zero_std)
        for k in update_metrics[0]:
            metrics[k] = float(np.mean([float(m[k]) for m in update_metrics]))
        metrics["loss"] = float(update_metrics[0]["loss"])  # before any reuse of the batch
        if active is not None:
            metrics["update_microbatches_frac"] = active / (cfg.batch_size // cfg.effective_microbatch)
        if metrics.get("loss_tokens", 1.0) == 0:  # nothing entered the update: no entropy or clip stats
            for k in ("entropy", "clip_ratio_low", "clip_ratio_high"):
                metrics.pop(k, None)
        generated = int(sum(e.generated for e in episodes))
        step_time = t_end - t_start
        metrics.update({
            "tokens_generated": generated,
            "tokens_per_s": generated / max(step_time, 1e-9),
            "sample_tokens_per_s": generated / max(timings["sample_s"], 1e-9),
            "time_sample_s": timings["sample_s"],
            "time_score_s": timings["score_s"],
            "time_update_s": t_end - t_update,
            "time_step_s": step_time,
            "batch_shape": list(batch["tokens"].shape),
        })
        if cfg.num_iterations > 1 and cfg.temperature == 1.0:
            # the sampler's log-probs are of the temperature-1 policy: comparable only then
            mask = batch["loss_mask"] > 0
            old = np.asarray(device_batch["old_logprobs"])
            metrics["sampler_logprob_gap"] = float(np.abs(old - sampler_logprobs)[mask].mean()) if mask.any() else 0.0
        self.step = step
        if cfg.log_samples_every and step % cfg.log_samples_every == 0:
            self.logger.samples(step, self._sample_records(episodes))
        return metrics

    def _sample_records(self, episodes) -> list[dict]:
        out = []
        picks = np.linspace(0, len(episodes) - 1, num=min(self.cfg.samples_per_log, len(episodes))).astype(int)
        for i in picks:
            ep = episodes[int(i)]
            prompt = [m for m in ep.messages[: len(ep.messages)] if m.get("role") != "assistant"][:3]
            out.append({"env": self.env_ids[ep.env], "row": ep.row, "prompt": prompt,
                        "replies": ep.replies, "reward": ep.reward,
                        "reason": (ep.evaluation or {}).get("reason", "")})
        return out

    # ------------------------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        if self._stop_signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self._stop_signal = signum
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint after this step "
              "(send again to stop at once)", file=sys.stderr)

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.steps``; returns the last train metrics and evaluations."""
        import threading

        cfg = self.cfg
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        bar = None
        evals: dict[int, Any] = {}
        last: dict[str, float] = {}
        try:
            if cfg.eval_at_start and self.step == 0 and self.last_eval_step < 0:
                evals[0] = self.evaluate()
            if cfg.progress and self.is_primary:
                from tqdm.auto import tqdm

                bar = tqdm(total=cfg.steps, initial=self.step, desc="grpo", unit="step", dynamic_ncols=True)
            while self.step < cfg.steps:
                if self._stop_signal is not None:
                    break
                last = self.train_one_step()
                self.logger.metrics(self.step, last)
                if bar is not None:
                    post = {"reward": f"{last['reward']:.3f}"}
                    if "kl" in last:
                        post["kl"] = f"{last['kl']:.4f}"
                    post["tok/s"] = f"{last['tokens_per_s']:.0f}"
                    bar.set_postfix(post, refresh=False)
                    bar.update(1)
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    evals[self.step] = self.evaluate()
                if cfg.save_every and self.step % cfg.save_every == 0:
                    self.save()
            if self._stop_signal is not None:
                self.save()
                raise TrainingInterrupted(self._stop_signal, self.step)
            if self.last_eval_step != self.step:
                evals[self.step] = self.evaluate()
            self.save()
        finally:
            if bar is not None:
                bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return {"step": self.step, "train": last, "eval": evals}

    def close(self) -> None:
        self.logger.close()
        for g in self.groups + (self._eval_groups or []):
            g.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.checkpointer.close()


def train(cfg: TrainConfig, *, resume: bool = False, model=None) -> dict[str, Any]:
    """Run GRPO training as configured; returns the final metrics (see Trainer.fit)."""
    trainer = Trainer(cfg, resume=resume, model=model)
    try:
        return trainer.fit()
    finally:
        trainer.close()
