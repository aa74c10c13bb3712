"""Checkpoints of a training run with orbax: save every N steps, on a signal and at the end;
resume exactly.

A checkpoint ``RUN_DIR/checkpoints/<step>/`` holds two orbax items:

    state   the LoRA parameters, the optimizer state, the update counter and the PRNG key
    meta    JSON: step, data-order position of every env, the run config, and the model and
            LoRA fingerprint that a resume is checked against

orbax writes each checkpoint into a temporary directory and renames it into place only when
it is complete, so a process killed mid-save (even with SIGKILL) leaves the previous
checkpoint intact; leftover temporary directories are removed when the run is resumed. Only
the last ``keep`` checkpoints are kept, and an old one is deleted only after a newer one is
committed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

META_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be found or read."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint made for another model or another LoRA shape than the one configured."""


def _ocp():
    import orbax.checkpoint as ocp

    # orbax logs every save/rename at INFO; keep the training output readable
    logging.getLogger("absl").setLevel(logging.WARNING)
    return ocp


def lora_shapes(lora) -> dict[str, list[int]]:
    """{"layers/self_attn/q_proj/a": [L, in, r], ...} of a LoRA tree."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(lora)[0]:
        key = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        out[key] = [int(d) for d in np.shape(leaf)]
    return out


def fingerprint(model_name: str, model_config: dict, lora_cfg: dict, lora) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed: the model and the LoRA layout."""
    return {"model": model_name, "model_config": model_config, "lora": lora_cfg,
            "lora_shapes": lora_shapes(lora)}


def check_fingerprint(saved: dict[str, Any], current: dict[str, Any], where: str) -> None:
    """Raise CheckpointMismatchError naming the first difference."""
    s_cfg, c_cfg = saved.get("model_config", {}), current["model_config"]
    if s_cfg != c_cfg:
        diffs = [f"{k}: checkpoint {s_cfg.get(k)!r} vs now {c_cfg.get(k)!r}"
                 for k in sorted(set(s_cfg) | set(c_cfg)) if s_cfg.get(k) != c_cfg.get(k)]
        raise CheckpointMismatchError(
            f"the checkpoint in {where} was made for another model ({saved.get('model')!r}) than the "
            f"one configured ({current['model']!r}): " + "; ".join(diffs[:4]))
    s_shapes, c_shapes = saved.get("lora_shapes", {}), current["lora_shapes"]
    if s_shapes != c_shapes:
        s_lora, c_lora = saved.get("lora", {}), current["lora"]
        detail = ""
        for key in ("rank", "targets"):
            if s_lora.get(key) != c_lora.get(key):
                detail = f" (LoRA {key}: checkpoint {s_lora.get(key)!r} vs now {c_lora.get(key)!r})"
                break
        if not detail:
            missing = sorted(set(s_shapes) ^ set(c_shapes))
            bad = missing[:1] or [k for k in s_shapes if s_shapes[k] != c_shapes.get(k)][:1]
            detail = f" (first difference: {bad[0]})" if bad else ""
        raise CheckpointMismatchError(
            f"the checkpoint in {where} has another LoRA shape than the one configured{detail}; "
            "resume with the run's own settings or start a new run directory")


class Checkpointer:
    """Save and restore the train state of one run directory."""

    def __init__(self, run_dir: str, keep: int = 2, *, read_only: bool = False):
        ocp = _ocp()
        self.directory = os.path.abspath(os.path.join(run_dir, "checkpoints"))
        if read_only and not os.path.isdir(self.directory):
            raise CheckpointError(f"no checkpoints in {run_dir!r} (expected a 'checkpoints' folder)")
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=not read_only, enable_async_checkpointing=False,
            cleanup_tmp_directories=not read_only, read_only=read_only)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "meta"))

    # ------------------------------------------------------------------------------------
    def steps(self) -> list[int]:
        self.manager.reload()
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: dict, meta: dict[str, Any]) -> None:
        """Write checkpoint `step` (blocking; committed atomically)."""
        ocp = _ocp()
        if step in self.manager.all_steps():
            return
        meta = dict(meta, version=META_VERSION, step=int(step))
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def read_meta(self, step: int | None = None) -> tuple[int, dict[str, Any]]:
        """(step, meta) of `step` (default: the latest)."""
        ocp = _ocp()
        step = self._pick(step)
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            meta = restored["meta"]
        except Exception as e:  # orbax raises many kinds for unreadable files
            raise self._unreadable(step, e) from e
        if not isinstance(meta, dict) or meta.get("version") != META_VERSION or "fingerprint" not in meta:
            raise CheckpointError(f"checkpoint {step} in {self.directory} has no valid metadata; "
                                  f"{self._advice(step)}")
        return step, meta

    def restore(self, abstract_state, step: int | None = None,
                expect: dict[str, Any] | None = None) -> tuple[dict, dict[str, Any]]:
        """Restore (state, meta). `abstract_state`: a tree of jax.ShapeDtypeStruct (with
        shardings) giving the target layout; `expect`: the current fingerprint to check first."""
        ocp = _ocp()
        step, meta = self.read_meta(step)
        if expect is not None:
            check_fingerprint(meta["fingerprint"], expect, f"{self.directory}/{step}")
        try:
            restored = self.manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
            state = restored["state"]
        except Exception as e:
            raise self._unreadable(step, e) from e
        return state, meta

    def restore_lora(self, step: int | None = None,
                     expect: dict[str, Any] | None = None) -> tuple[dict, dict[str, Any]]:
        """(LoRA tree, meta) of a checkpoint, without building the optimizer (for eval/export)."""
        ocp = _ocp()
        step, meta = self.read_meta(step)
        if expect is not None:
            check_fingerprint(meta["fingerprint"], expect, f"{self.directory}/{step}")
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
            lora = restored["state"]["lora"]
        except Exception as e:
            raise self._unreadable(step, e) from e
        return jax.tree.map(jax.numpy.asarray, lora), meta

    def close(self) -> None:
        self.manager.wait_until_finished()  # includes the start-up cleanup of temporary folders
        self.manager.close()

    # ------------------------------------------------------------------------------------
    def _pick(self, step: int | None) -> int:
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise CheckpointError(f"no checkpoint for step {step} in {self.directory}; available: {steps}")
        return step

    def _advice(self, step: int) -> str:
        older = [s for s in self.steps() if s < step]
        if older:
            return (f"delete {os.path.join(self.directory, str(step))} to resume from step {older[-1]} "
                    "instead")
        return "start a new run"

    def _unreadable(self, step: int, error: Exception) -> CheckpointError:
        text = str(error).strip().splitlines()
        first = text[0][:300] if text else type(error).__name__
        return CheckpointError(f"checkpoint {step} in {self.directory} is corrupt or incomplete "
                               f"({type(error).__name__}: {first}); {self._advice(step)}")


def abstract_like(tree, shardings=None):
    """ShapeDtypeStruct tree (with shardings when given) of a tree of arrays."""
    if shardings is None:
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=getattr(x, "sharding", None)), tree)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=s), tree, shardings)
