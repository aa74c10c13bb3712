"""The ``rftgym`` command: train, eval, export, plot (and list environments).

    rftgym train --env rft/Math-v0 --env-kwargs '{"difficulty": 1}' --steps 60 --run-dir runs/math
    rftgym train --resume runs/math --steps 100
    rftgym eval  --env rft/Math-v0 --model runs/math --limit 200 [--json]
    rftgym export runs/math --out exported/ --merged
    rftgym plot  runs/math

JAX and the trainer are imported inside each subcommand, so ``rftgym --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys


def _train_parser(sub) -> None:
    from rftgym.trainers.train_config import add_train_arguments

    p = sub.add_parser("train", help="GRPO training with LoRA",
                       description="GRPO fine-tuning of a LoRA on one or several rftgym environments. "
                                   "Every setting can also come from --config FILE (TOML or JSON); "
                                   "flags override the file.")
    add_train_arguments(p)


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="score a model on environments' test splits",
                       description="pass@1 of a base model, a run directory (latest checkpoint) or an "
                                   "exported folder on each environment's held-out rows.")
    p.add_argument("--env", action="append", required=True, metavar="ID", help="environment id (repeatable)")
    p.add_argument("--env-kwargs", action="append", metavar="JSON",
                   help="constructor arguments, one per --env in order (or one for all)")
    p.add_argument("--model", default="smollm2-135m-instruct",
                   help="base model name/folder/.gguf/hub id, a training RUN_DIR, or an exported folder "
                        "(default: %(default)s)")
    p.add_argument("--limit", type=int, default=100, help="rows per env (0 = all; default: %(default)s)")
    p.add_argument("--split", default=None, help="dataset split to score (default: the env's test split)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="reply length limit (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="prompts sampled at once (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    p.add_argument("--samples", metavar="FILE", default=None,
                   help="also write every scored row (env, row, reward, replies, reason) to this JSONL file")


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a trained run as a HF model or a PEFT adapter",
                       description="Export the latest checkpoint of RUN_DIR.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--merged", dest="mode", action="store_const", const="merged",
                      help="LoRA folded into the base weights: a transformers-loadable folder (default)")
    mode.add_argument("--adapter", dest="mode", action="store_const", const="adapter",
                      help="a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)")
    p.set_defaults(mode="merged")


def _plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="PNG training curves of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/curves.png)")
    p.add_argument("--smooth", type=int, default=5, help="moving-average window of the train reward")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rftgym", description="Reinforcement fine-tuning with rftgym environments.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,export,plot,envs}")
    _train_parser(sub)
    _eval_parser(sub)
    _export_parser(sub)
    _plot_parser(sub)
    sub.add_parser("envs", help="list the registered environments")
    return parser


# ----------------------------------------------------------------------------- commands


def cmd_train(args) -> int:
    from rftgym.trainers.train_config import ConfigError, TrainConfig, config_from_args

    base = None
    if args.resume:
        saved = os.path.join(args.resume, "config.json")
        if not os.path.isfile(saved):
            raise ConfigError(f"--resume {args.resume}: no config.json there (is it a run directory?)")
        base = TrainConfig.from_file(saved)
        given = getattr(args, "run_dir", None)
        if given is not None and os.path.abspath(given) != os.path.abspath(args.resume):
            raise ConfigError(f"--run-dir {given} differs from --resume {args.resume}; give one of them")
        args.run_dir = args.resume
    cfg = config_from_args(args, base=base)
    _use_compilation_cache()

    from rftgym.trainers.train import TrainingInterrupted, train

    try:
        result = train(cfg, resume=bool(args.resume))
    except TrainingInterrupted as e:
        print(f"rftgym train: {e}; continue with: rftgym train --resume {cfg.run_dir}", file=sys.stderr)
        from rftgym.trainers.train import SIGNAL_EXIT_CODES

        return SIGNAL_EXIT_CODES.get(e.signum, 1)
    final = result["eval"].get(result["step"], {})
    for env_id, summary in final.items():
        print(f"step {result['step']}: {env_id} held-out reward {summary['reward']:.3f} "
              f"(accuracy {summary['accuracy']:.3f}, n={summary['n']})")
    print(f"run directory: {cfg.run_dir}")
    return 0


def cmd_eval(args) -> int:
    from rftgym.trainers.train_config import ConfigError, EnvSpec, _parse_kwargs

    specs = [EnvSpec(e.rpartition(":")[0] if ":" in e and e.rpartition(":")[2].replace(".", "").isdigit() else e)
             for e in args.env]
    if args.env_kwargs:
        if len(args.env_kwargs) not in (1, len(specs)):
            raise ConfigError("give one --env-kwargs per --env or one for all")
        kws = [_parse_kwargs(k) for k in args.env_kwargs]
        kws = kws * len(specs) if len(kws) == 1 else kws
        for spec, kw in zip(specs, kws):
            spec.kwargs = dict(kw)
    if args.limit < 0 or args.batch_size < 1 or args.max_new_tokens < 1:
        raise ConfigError("--limit must be >= 0, --batch-size and --max-new-tokens >= 1")

    from rftgym.trainers.evaluate import run_eval

    _use_compilation_cache()
    run_eval(specs, args.model, limit=args.limit, batch_size=args.batch_size, temperature=args.temperature,
             max_new_tokens=args.max_new_tokens, seed=args.seed, split=args.split, as_json=args.json,
             samples_path=args.samples)
    return 0


def cmd_export(args) -> int:
    from rftgym.trainers.evaluate import export_run

    out = export_run(args.run_dir, args.out, mode=args.mode)
    print(f"exported the {args.mode} model of {args.run_dir} to {out}")
    return 0


def cmd_plot(args) -> int:
    from rftgym.trainers.plotting import plot_run

    print(plot_run(args.run_dir, args.out, smooth=args.smooth))
    return 0


def cmd_envs(args) -> int:
    import rftgym

    for env_id, summary in rftgym.list_envs().items():
        print(f"{env_id:<22} {summary}")
    return 0


def _use_compilation_cache() -> None:
    """Keep compiled XLA programs in ~/.cache/rftgym/jax so the next run skips compilation
    (unless JAX_COMPILATION_CACHE_DIR already chooses a place)."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    import jax

    cache = os.path.join(os.path.expanduser(os.environ.get("RFTGYM_CACHE") or "~/.cache/rftgym"), "jax")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "export": cmd_export, "plot": cmd_plot, "envs": cmd_envs}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input; shown as one line instead of a traceback."""
    errors: list[type[BaseException]] = [FileNotFoundError, NotADirectoryError]
    mods = {"rftgym.trainers.train_config": ("ConfigError",),
            "rftgym.trainers.checkpoint": ("CheckpointError",),
            "rftgym.trainers.sharding": ("MeshError",),
            "rftgym.datasets": ("DatasetError",)}
    for mod_name, names in mods.items():
        mod = sys.modules.get(mod_name)
        for name in names:
            if mod is not None and hasattr(mod, name):
                errors.append(getattr(mod, name))
    for name in ("LoadError", "ModelLoadError", "ExportError"):
        for mod_name in ("rftgym.trainers.loading", "rftgym.trainers.export"):
            mod = sys.modules.get(mod_name)
            if mod is not None and isinstance(getattr(mod, name, None), type):
                errors.append(getattr(mod, name))
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"rftgym {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - shown as one line unless it is a bug
        if os.environ.get("RFTGYM_DEBUG") or not isinstance(e, _user_errors() + (ValueError, RuntimeError)):
            raise
        print(f"rftgym {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
