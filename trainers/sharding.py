"""Device meshes and shardings: data parallel, fully sharded (FSDP) and tensor parallel.

One `jax.sharding.Mesh` with three axes:

    data    replicas of the parameters, each with its own slice of the batch rows
    fsdp    parameters (and their LoRA adapters and optimizer state) split along their
            hidden dimension; batch rows are split over this axis as well (ZeRO-3 style)
    tensor  Megatron-style tensor parallelism: attention heads / MLP columns split, the
            vocabulary of the embedding and LM head split

Everything else is plain `NamedSharding` + XLA's SPMD partitioner: the jit-compiled update and
the sampler run unchanged on any mesh, and the result equals the single-device one up to fp32
summation order.

Placement of the base parameters (model.py names, layers stacked on a leading axis L):

    embed_tokens/embedding      [V, H]          (tensor, fsdp)
    q/k/v_proj, gate/up_proj    [L, H, out]     (-, fsdp, tensor)    column parallel
    o_proj, down_proj           [L, in, H]      (-, tensor, fsdp)    row parallel
    q/k/v biases                [L, out]        (-, tensor)
    lm_head/kernel              [H, V]          (fsdp, tensor)
    norms                       replicated
LoRA a [L, in, r] follows its kernel's input dimension, b [L, r, out] its output dimension.
A dimension that a mesh axis does not divide evenly stays unsplit on that axis.

Batch rows are split over ("data", "fsdp"); the KV cache [L, B, KVH, S, D] over rows and
(tensor) KV heads.

Multi-host: call `jax.distributed.initialize()` first on every host (see TRAINING.md); then
`jax.devices()` lists every host's devices and `make_mesh` spans them all.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

_COLUMN = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
_ROW = ("o_proj", "down_proj")


class MeshError(ValueError):
    """A mesh shape that does not fit the devices or the batch."""


def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, devices=None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: all). ``data=-1`` takes what is left."""
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if fsdp < 1 or tensor < 1:
        raise MeshError(f"fsdp and tensor must be >= 1, got fsdp={fsdp}, tensor={tensor}")
    if data == -1:
        if n % (fsdp * tensor):
            raise MeshError(f"{n} devices cannot be split into fsdp={fsdp} x tensor={tensor}")
        data = n // (fsdp * tensor)
    if data * fsdp * tensor != n:
        raise MeshError(f"mesh data={data} x fsdp={fsdp} x tensor={tensor} = {data * fsdp * tensor} "
                        f"devices, but {n} are available")
    return Mesh(np.array(devices).reshape(data, fsdp, tensor), AXES)


def _fit(mesh: Mesh, shape, spec) -> P:
    """Drop axes from `spec` where the mesh axis size does not divide the dimension."""
    out = []
    for dim, axis in zip(shape, spec):
        if axis is None:
            out.append(None)
            continue
        names = axis if isinstance(axis, tuple) else (axis,)
        size = int(np.prod([mesh.shape[a] for a in names]))
        out.append(axis if size > 1 and dim % size == 0 else None)
    out += [None] * (len(shape) - len(out))
    return P(*out)


def _param_spec(path: tuple[str, ...], ndim: int):
    name = path[-2] if len(path) >= 2 else ""
    leaf = path[-1]
    if path[0] == "embed_tokens":
        return ("tensor", "fsdp")
    if path[0] == "lm_head":
        return ("fsdp", "tensor")
    if name in _COLUMN:
        return (None, "fsdp", "tensor") if leaf == "kernel" else (None, "tensor")
    if name in _ROW:
        return (None, "tensor", "fsdp") if leaf == "kernel" else (None, "fsdp")
    return (None,) * ndim


def _lora_spec(path: tuple[str, ...], ndim: int):
    module, leaf = path[-2], path[-1]
    kernel = _param_spec(path[:-1] + ("kernel",), 3)
    if leaf == "a":  # [L, in, r]
        return (None, kernel[1], None)
    if leaf == "b":  # [L, r, out]
        return (None, None, kernel[2])
    return (None,) * ndim


def _keys(path) -> tuple[str, ...]:
    return tuple(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def param_shardings(mesh: Mesh, params) -> Any:
    """NamedSharding tree for the base parameters (or their shapes)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: NamedSharding(mesh, _fit(mesh, x.shape, _param_spec(_keys(path), len(x.shape)))),
        params)


def lora_shardings(mesh: Mesh, lora) -> Any:
    """NamedSharding tree for a LoRA tree (a/b follow their base kernel's split)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: NamedSharding(mesh, _fit(mesh, x.shape, _lora_spec(_keys(path), len(x.shape)))),
        lora)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


class RowSharding:
    """Shardings that split the leading (row) axis over ("data", "fsdp")."""

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        self.size = mesh.shape["data"] * mesh.shape["fsdp"]

    def for_rank(self, ndim: int) -> NamedSharding:
        return NamedSharding(self.mesh, P(BATCH_AXES, *([None] * (ndim - 1))))

    def for_shape(self, shape) -> NamedSharding:
        """Rows split when they divide evenly, else replicated."""
        return NamedSharding(self.mesh, _fit(self.mesh, shape, (BATCH_AXES,)))

    def check(self, rows: int, what: str = "batch") -> None:
        if rows % self.size:
            raise MeshError(f"the {what} of {rows} rows does not split evenly over data x fsdp = "
                            f"{self.size} devices; choose sizes that are multiples of {self.size}")

    def put(self, tree):
        """Place a tree of host arrays [rows, ...] on the mesh, rows split."""
        return jax.tree.map(lambda a: jax.device_put(a, self.for_rank(np.ndim(a))), tree)


def cache_spec(mesh: Mesh, cfg, shape) -> P:
    """Placement of one KV-cache array: k/v [L, B, KVH, S, D] (or per layer [B, KVH, S, D]) have
    rows over data x fsdp and KV heads over tensor; the slot mask [B, S] has rows split."""
    heads = "tensor" if cfg.num_kv_heads % mesh.shape["tensor"] == 0 else None
    specs = {5: (None, BATCH_AXES, heads, None, None), 4: (BATCH_AXES, heads, None, None), 2: (BATCH_AXES, None)}
    return _fit(mesh, shape, specs[len(shape)])


def cache_sharding(mesh: Mesh, cfg, cache) -> Any:
    """NamedSharding tree for a KV cache from model.init_cache (stacked or per-layer)."""
    return jax.tree.map(lambda x: NamedSharding(mesh, cache_spec(mesh, cfg, x.shape)), cache)


def shard_params(mesh: Mesh, params):
    """Move base parameters onto the mesh with `param_shardings`."""
    return jax.device_put(params, param_shardings(mesh, params))


def shard_train_state(mesh: Mesh, state: dict, optimizer) -> tuple[dict, Any]:
    """Place a train state (lora, opt_state, step) on the mesh; returns (state, its shardings).

    The optimizer moments take the layout of the LoRA leaves they belong to; counters are
    replicated.
    """
    import optax

    lora_sh = lora_shardings(mesh, state["lora"])
    # fresh copies, never the caller's buffers: the update donates the state it is given
    state = jax.tree.map(lambda x: jax.numpy.array(x, copy=True), state)
    lora = jax.device_put(state["lora"], lora_sh)
    opt_shardings = optax.tree_map_params(
        optimizer, lambda _, sharding: sharding, state["opt_state"], lora_sh,
        transform_non_params=lambda _: replicated(mesh))
    opt_state = jax.device_put(state["opt_state"], opt_shardings)
    step = jax.device_put(state["step"], replicated(mesh))
    placed = {"lora": lora, "opt_state": opt_state, "step": step}
    return placed, jax.tree.map(lambda x: x.sharding, placed)


def make_sampler(cfg, tokenizer, mesh: Mesh | None = None, **kwargs):
    """A `sampler.Sampler`; on a multi-device mesh its KV cache is pinned to `cache_sharding`
    (rows over data x fsdp, KV heads over tensor) as soon as the prompt fills it."""
    from .sampler import Sampler

    if mesh is None or mesh.size == 1:
        return Sampler(cfg, tokenizer, **kwargs)

    class MeshSampler(Sampler):
        def _prefill_fn(self, *args, **kw):
            cache, logits, next_pos = super()._prefill_fn(*args, **kw)
            cache = jax.lax.with_sharding_constraint(cache, cache_sharding(mesh, self.cfg, cache))
            return cache, logits, next_pos

    return MeshSampler(cfg, tokenizer, **kwargs)
