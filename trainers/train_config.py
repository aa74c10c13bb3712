"""`TrainConfig`: every knob of a GRPO run, from defaults, a TOML/JSON file and CLI flags.

This module does not import JAX, so `rftgym train --help` stays fast.

Precedence: dataclass defaults < config file (`--config run.toml`) < command-line flags. A config
file holds the same names as the dataclass fields (`learning_rate = 5e-4`) plus any number of
`[[env]]` tables::

    steps = 60
    learning_rate = 5e-4

    [[env]]
    id = "rft/Math-v0"
    weight = 1.0
    kwargs = { difficulty = 1 }

On the command line an environment is `--env ID[:WEIGHT]` (repeatable) and its constructor
arguments `--env-kwargs JSON` (one per `--env`, in the same order, or one for all).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from typing import Any

ADVANTAGES = ("grpo", "no_std", "batch_std", "rloo")
LOSS_TYPES = ("grpo", "dapo", "dr_grpo")
LR_SCHEDULES = ("constant", "cosine", "linear")


class ConfigError(ValueError):
    """A bad training configuration (unknown key, wrong type, value out of range)."""


@dataclass
class EnvSpec:
    """One training environment of the mixture.

    Args:
        id: a registered id such as ``"rft/Math-v0"``.
        weight: relative share of the prompts drawn from this environment.
        kwargs: constructor arguments for training (e.g. ``{"difficulty": 1}``).
        eval_kwargs: constructor arguments for evaluation; default: ``kwargs`` plus
            ``split="test"`` when the environment takes a ``split`` argument.
    """

    id: str
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    eval_kwargs: dict[str, Any] | None = None

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"env id must be a non-empty string, got {self.id!r}")
        try:
            self.weight = float(self.weight)
        except (TypeError, ValueError):
            raise ConfigError(f"env {self.id!r}: weight must be a number, got {self.weight!r}") from None
        if not self.weight > 0:
            raise ConfigError(f"env {self.id!r}: weight must be > 0, got {self.weight}")
        if not isinstance(self.kwargs, dict):
            raise ConfigError(f"env {self.id!r}: kwargs must be a table/object, got {type(self.kwargs).__name__}")
        if self.eval_kwargs is not None and not isinstance(self.eval_kwargs, dict):
            raise ConfigError(f"env {self.id!r}: eval_kwargs must be a table/object")


def _default_envs() -> list[EnvSpec]:
    return [EnvSpec("rft/Math-v0", kwargs={"difficulty": 1})]


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class TrainConfig:
    """All settings of a training run (see the module docstring for how to set them)."""

    # --- what to train -------------------------------------------------------------------
    envs: list[EnvSpec] = field(default_factory=_default_envs, metadata=_help(
        "training environments (mixture); on the CLI: --env ID[:WEIGHT] and --env-kwargs JSON"))
    model: str = field(default="smollm2-135m-instruct", metadata=_help(
        "embedded default name, local HF folder, .gguf file or hub id"))
    dtype: str = field(default="float32", metadata=_help("parameter dtype of the base model: float32 | bfloat16"))
    # --- run -----------------------------------------------------------------------------
    run_dir: str = field(default="runs/latest", metadata=_help("where checkpoints, metrics and samples go"))
    steps: int = field(default=50, metadata=_help("GRPO steps (one batch of rollouts each)"))
    seed: int = field(default=0, metadata=_help("seed for data order, sampling and LoRA init"))
    shuffle_data: bool = field(default=True, metadata=_help("serve each env's rows in a seeded shuffled order (else in order)"))
    # --- rollouts ------------------------------------------------------------------------
    prompts_per_step: int = field(default=4, metadata=_help("P: distinct prompts per step"))
    group_size: int = field(default=8, metadata=_help("G: sampled replies per prompt"))
    max_new_tokens: int = field(default=64, metadata=_help("reply length limit (tokens per turn)"))
    max_prompt_len: int = field(default=512, metadata=_help("longer prompts are cut from the left"))
    max_episode_tokens: int = field(default=1024, metadata=_help(
        "multi-turn envs: tokens after the first prompt (replies + env messages) kept for the loss"))
    temperature: float = field(default=1.0, metadata=_help("sampling temperature of rollouts"))
    top_p: float = field(default=1.0, metadata=_help("nucleus sampling of rollouts (1 = off)"))
    top_k: int = field(default=0, metadata=_help("top-k sampling of rollouts (0 = off)"))
    sample_dtype: str | None = field(default=None, metadata=_help(
        "cast the weights to this dtype for sampling only (bfloat16: ~1.5x faster decoding on CPU; "
        "the update stays in the parameter dtype)"))
    executor: str = field(default="thread", metadata=_help("where replies are scored: thread | process"))
    # --- GRPO loss -----------------------------------------------------------------------
    advantage: str = field(default="grpo", metadata=_help(
        "grpo: (R-mean)/(std+eps) per group | no_std: R-mean (Dr. GRPO) | batch_std: group mean, "
        "batch std | rloo: leave-one-out baseline"))
    loss_type: str = field(default="dapo", metadata=_help(
        "token aggregation: grpo (mean per reply, then over replies) | dapo (sum / all tokens) | "
        "dr_grpo (sum / (replies x max_new_tokens))"))
    epsilon: float = field(default=0.2, metadata=_help("lower clip range of the ratio (1 - epsilon)"))
    epsilon_high: float | None = field(default=None, metadata=_help(
        "upper clip range (1 + epsilon_high); default: epsilon"))
    beta: float = field(default=0.0, metadata=_help(
        "KL penalty coefficient (k3 estimator vs the adapters-off base model); KL is also logged when > 0"))
    log_kl: bool = field(default=False, metadata=_help("compute and log the KL to the base even when beta = 0"))
    num_iterations: int = field(default=1, metadata=_help(
        "optimizer updates per batch of rollouts (> 1 uses stored old log-probs)"))
    drop_zero_variance_groups: bool = field(default=False, metadata=_help(
        "leave groups whose replies all got the same reward out of the loss (DAPO dynamic sampling)"))
    mask_truncated: bool = field(default=False, metadata=_help("leave replies cut at max_new_tokens out of the loss"))
    # --- optimizer -----------------------------------------------------------------------
    learning_rate: float = field(default=5e-4, metadata=_help("peak AdamW learning rate (LoRA likes 1e-4..1e-3)"))
    lr_schedule: str = field(default="constant", metadata=_help("after warmup: constant | cosine | linear"))
    warmup_steps: int = field(default=0, metadata=_help("linear warmup, in optimizer updates"))
    min_lr_ratio: float = field(default=0.1, metadata=_help("final lr / peak lr of cosine and linear decay"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    adam_b1: float = field(default=0.9, metadata=_help("AdamW beta1"))
    adam_b2: float = field(default=0.99, metadata=_help("AdamW beta2"))
    adam_eps: float = field(default=1e-8, metadata=_help("AdamW epsilon"))
    max_grad_norm: float = field(default=1.0, metadata=_help("global-norm gradient clipping (0 = off)"))
    microbatch_size: int = field(default=16, metadata=_help(
        "rows per forward/backward inside the update (gradients accumulate; 0 or more than the "
        "batch = the whole batch)"))
    share_prompt: bool = field(default=True, metadata=_help(
        "run each group's prompt once in the update and reuse its KV cache for the G replies"))
    skip_zero_advantage: bool = field(default=True, metadata=_help(
        "leave groups whose advantages are all 0 out of the update's forward/backward (exact: without "
        "a KL term they have no gradient; entropy and clip metrics then cover the other groups)"))
    gradient_checkpointing: bool = field(default=False, metadata=_help(
        "recompute layer activations in the backward pass (less memory, ~30% more compute)"))
    layer_loop: str = field(default="auto", metadata=_help(
        "how the update runs the decoder layers: scan (one compiled layer) | unroll (longer compile, "
        "faster on CPU, ~1.4x with bf16 weights) | auto (unroll for bfloat16 weights, else scan)"))
    # --- LoRA ----------------------------------------------------------------------------
    lora_rank: int = field(default=16, metadata=_help("LoRA rank r"))
    lora_alpha: float = field(default=32.0, metadata=_help("LoRA alpha (scale = alpha / r)"))
    lora_dropout: float = field(default=0.0, metadata=_help("dropout on LoRA inputs during the update"))
    lora_targets: list[str] = field(default_factory=lambda: ["q", "k", "v", "o", "gate", "up", "down"],
                                    metadata=_help("projections that get adapters (comma separated)"))
    # --- evaluation ----------------------------------------------------------------------
    eval_every: int = field(default=0, metadata=_help(
        "evaluate on each env's test split every N steps (0: only before and after training)"))
    eval_limit: int = field(default=100, metadata=_help("held-out prompts per env per evaluation (0 = all)"))
    eval_temperature: float = field(default=0.0, metadata=_help("0 = greedy pass@1"))
    eval_batch_size: int = field(default=32, metadata=_help("prompts sampled at once during evaluation"))
    eval_at_start: bool = field(default=True, metadata=_help("evaluate the base model before step 1"))
    # --- checkpoints ---------------------------------------------------------------------
    save_every: int = field(default=25, metadata=_help("checkpoint every N steps (also on SIGTERM/SIGINT and at the end)"))
    keep_checkpoints: int = field(default=2, metadata=_help("keep the last K checkpoints"))
    # --- logging -------------------------------------------------------------------------
    log_samples_every: int = field(default=5, metadata=_help("append prompts/replies/rewards to samples.jsonl every N steps (0 = never)"))
    samples_per_log: int = field(default=4, metadata=_help("replies written per samples.jsonl entry"))
    progress: bool = field(default=True, metadata=_help("show a progress bar"))
    tensorboard: bool = field(default=False, metadata=_help("also log to RUN_DIR/tensorboard (needs tensorboardX or tensorboard)"))
    wandb_project: str | None = field(default=None, metadata=_help("also log to this Weights & Biases project (needs wandb)"))
    # --- devices -------------------------------------------------------------------------
    mesh_data: int = field(default=-1, metadata=_help("data-parallel mesh axis size (-1: all devices left)"))
    mesh_fsdp: int = field(default=1, metadata=_help("fully-sharded (FSDP) mesh axis size"))
    mesh_tensor: int = field(default=1, metadata=_help("tensor-parallel mesh axis size"))
    distributed: bool = field(default=False, metadata=_help(
        "multi-host: call jax.distributed.initialize() first (cluster auto-detected, or the coordinator flags)"))
    coordinator_address: str | None = field(default=None, metadata=_help("multi-host: host:port of process 0"))
    num_processes: int | None = field(default=None, metadata=_help("multi-host: number of processes"))
    process_id: int | None = field(default=None, metadata=_help("multi-host: this process's index"))

    def __post_init__(self):
        self.envs = [e if isinstance(e, EnvSpec) else _env_from_mapping(e) for e in self.envs]
        if isinstance(self.lora_targets, str):
            self.lora_targets = [t.strip() for t in self.lora_targets.split(",") if t.strip()]
        self.validate()

    # ------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the first bad setting."""
        if not self.envs:
            raise ConfigError("at least one environment is needed (--env ID)")

        def positive(name):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

        for name in ("steps", "prompts_per_step", "group_size", "max_new_tokens", "max_prompt_len", "max_episode_tokens",
                     "num_iterations", "lora_rank", "keep_checkpoints", "eval_batch_size"):
            positive(name)
        for name in ("save_every", "eval_every", "eval_limit", "log_samples_every", "warmup_steps",
                     "microbatch_size", "top_k"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        choices = {"advantage": ADVANTAGES, "loss_type": LOSS_TYPES, "lr_schedule": LR_SCHEDULES,
                   "executor": ("thread", "process"), "dtype": ("float32", "bfloat16"),
                   "layer_loop": ("auto", "scan", "unroll")}
        if self.sample_dtype is not None and self.sample_dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"sample_dtype must be float32 or bfloat16; got {self.sample_dtype!r}")
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if self.group_size < 2:
            raise ConfigError(f"group_size must be >= 2 for group-relative advantages, got {self.group_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.temperature < 0 or self.eval_temperature < 0:
            raise ConfigError("temperatures must be >= 0")
        if self.temperature == 0:
            raise ConfigError("temperature must be > 0 for training rollouts (a group of identical greedy "
                              "replies has no reward variance)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.epsilon < 0 or (self.epsilon_high is not None and self.epsilon_high < 0):
            raise ConfigError("epsilon and epsilon_high must be >= 0")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        batch = self.prompts_per_step * self.group_size
        if self.microbatch_size and self.microbatch_size < batch and batch % self.microbatch_size:
            raise ConfigError(f"microbatch_size ({self.microbatch_size}) must divide prompts_per_step x "
                              f"group_size ({batch})")
        if self.share_prompt and 0 < self.microbatch_size < batch and self.microbatch_size % self.group_size:
            raise ConfigError(f"microbatch_size ({self.microbatch_size}) must be a multiple of group_size "
                              f"({self.group_size}) with share_prompt on (or turn it off: --no-share-prompt)")
        known = ("q", "k", "v", "o", "gate", "up", "down")
        bad = [t for t in self.lora_targets if t not in known]
        if bad or not self.lora_targets:
            raise ConfigError(f"lora_targets must be a non-empty subset of {', '.join(known)}; got {self.lora_targets}")
        for name in ("mesh_fsdp", "mesh_tensor"):
            positive(name)
        if self.mesh_data == 0 or self.mesh_data < -1:
            raise ConfigError(f"mesh_data must be >= 1 or -1 (all devices), got {self.mesh_data}")

    @property
    def clip_high(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high

    @property
    def batch_size(self) -> int:
        return self.prompts_per_step * self.group_size

    @property
    def effective_microbatch(self) -> int:
        """Rows per microbatch actually used (the whole batch when microbatch_size is 0 or larger)."""
        if not self.microbatch_size or self.microbatch_size >= self.batch_size:
            return self.batch_size
        return self.microbatch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: "TrainConfig | None" = None,
                  source: str = "config") -> "TrainConfig":
        """Build from a mapping (unknown keys are an error naming the closest known key)."""
        data = dict(data)
        if "env" in data:  # the TOML spelling: [[env]] tables
            if "envs" in data:
                raise ConfigError(f"{source}: give either 'env' or 'envs', not both")
            data["envs"] = data.pop("env")
        names = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{source}: unknown setting {key!r}{hint}")
        values = base.to_dict() if base is not None else {}
        for key, value in data.items():
            values[key] = _coerce(names[key], value, source)
        if "envs" in values:
            values["envs"] = [e if isinstance(e, EnvSpec) else _env_from_mapping(e, source) for e in values["envs"]]
        return cls(**values)

    @classmethod
    def from_file(cls, path: str, *, base: "TrainConfig | None" = None) -> "TrainConfig":
        """Read a .toml or .json config file."""
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path!r} does not exist")
        try:
            if path.endswith(".json"):
                with open(path) as f:
                    data = json.load(f)
            else:
                with open(path, "rb") as f:
                    data = tomllib.load(f)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a table/object")
        return cls.from_dict(data, base=base, source=path)


def _env_from_mapping(value: Any, source: str = "config") -> EnvSpec:
    if isinstance(value, str):
        return parse_env_flag(value)
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: each env must be a table with an 'id', got {value!r}")
    allowed = {f.name for f in dataclasses.fields(EnvSpec)}
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError(f"{source}: unknown env setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "id" not in value:
        raise ConfigError(f"{source}: an env table is missing its 'id'")
    return EnvSpec(**value)


def _coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    """Check a config-file value against the field's type (ints for floats are fine)."""
    kind = f.type if not isinstance(f.type, str) else f.type
    text = str(kind)
    if f.name in ("envs", "lora_targets"):
        if f.name == "lora_targets" and isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {f.name} must be a list, got {type(value).__name__}")
        return value
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"{source}: {f.name} must not be empty")
    if text.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {f.name} must be true or false, got {value!r}")
        return value
    if text.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {f.name} must be an integer, got {value!r}")
        return value
    if text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {f.name} must be a number, got {value!r}")
        return float(value)
    if text.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {f.name} must be a string, got {value!r}")
        return value
    return value


# ---------------------------------------------------------------------------------- CLI


def parse_env_flag(text: str) -> EnvSpec:
    """``"rft/Math-v0"`` or ``"rft/Math-v0:0.7"`` -> EnvSpec."""
    env_id, sep, weight = text.rpartition(":")
    if sep and env_id:
        try:
            value = float(weight)
        except ValueError:
            raise ConfigError(f"--env {text!r}: the weight after ':' must be a number") from None
        return EnvSpec(env_id, value)
    return EnvSpec(text)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (defaults suppressed so file values are not overridden)."""
    parser.add_argument("--config", help="TOML or JSON file with any of these settings")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its latest checkpoint (its saved "
                             "config is the base; flags given here override it)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        help_text = f.metadata.get("help", "").replace("%", "%%")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.name == "envs":
            parser.add_argument("--env", dest="env", action="append", default=argparse.SUPPRESS,
                                metavar="ID[:WEIGHT]",
                                help="training environment, repeatable for a weighted mixture "
                                     f"(default: {default[0].id} with {json.dumps(default[0].kwargs)})")
            parser.add_argument("--env-kwargs", dest="env_kwargs", action="append",
                                default=argparse.SUPPRESS, metavar="JSON",
                                help="constructor arguments as a JSON object, one per --env in order "
                                     "(or one for all)")
            continue
        tp = hints[f.name]
        text = str(tp)
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif f.name == "lora_targets":
            kw["type"] = lambda s: [t.strip() for t in s.split(",") if t.strip()]
            kw["metavar"] = "T1,T2"
        elif tp is int:
            kw["type"] = int
        elif tp is float or "float" in text:
            kw["type"] = float
        else:
            kw["type"] = str
        if isinstance(default, list):
            default = ",".join(default)
        default_text = str(default).replace("%", "%%")
        parser.add_argument(_flag(f.name), help=f"{help_text} (default: {default_text})", **kw)


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """Merge defaults (or `base`), the --config file and explicit flags into a TrainConfig."""
    cfg = base if base is not None else TrainConfig()
    if getattr(args, "config", None):
        cfg = TrainConfig.from_file(args.config, base=cfg)
    values = {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in vars(args).items():
        if key in names:
            values[key] = value
    env_flags = getattr(args, "env", None)
    env_kwargs = getattr(args, "env_kwargs", None)
    if env_flags:
        envs = [parse_env_flag(e) for e in env_flags]
        if env_kwargs:
            if len(env_kwargs) not in (1, len(envs)):
                raise ConfigError(f"give one --env-kwargs per --env ({len(envs)}) or one for all, "
                                  f"got {len(env_kwargs)}")
            parsed = [_parse_kwargs(k) for k in env_kwargs]
            if len(parsed) == 1:
                parsed = parsed * len(envs)
            for spec, kw in zip(envs, parsed):
                spec.kwargs = dict(kw)
        values["envs"] = envs
    elif env_kwargs:
        if len(env_kwargs) not in (1, len(cfg.envs)):
            raise ConfigError(f"give one --env-kwargs per env ({len(cfg.envs)}) or one for all")
        parsed = [_parse_kwargs(k) for k in env_kwargs]
        if len(parsed) == 1:
            parsed = parsed * len(cfg.envs)
        values["envs"] = [dataclasses.replace(s, kwargs=kw) for s, kw in zip(cfg.envs, parsed)]
    if not values:
        return cfg
    merged = cfg.to_dict()
    merged.update(values)
    merged["envs"] = [e if isinstance(e, EnvSpec) else _env_from_mapping(e) for e in merged["envs"]]
    return TrainConfig(**merged)


def _parse_kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--env-kwargs {text!r} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--env-kwargs must be a JSON object, got {text!r}")
    return value
