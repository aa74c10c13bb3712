"""Sharding on 8 virtual CPU devices: one GRPO update and sampling give the same results on one
device and on data-parallel, FSDP and tensor-parallel meshes.

XLA_FLAGS must be set before JAX starts, so the check runs in a subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import grpo_toy

SCRIPT = textwrap.dedent(r'''
    import json, sys
    import jax, jax.numpy as jnp, numpy as np, optax
    sys.path.insert(0, TESTS_DIR)
    import grpo_toy
    from rftgym.trainers import sharding
    from rftgym.trainers.config import ModelConfig
    from rftgym.trainers.grpo import LossConfig, init_train_state, make_train_step
    from rftgym.trainers.lora import LoraConfig, init_lora
    from rftgym.trainers.model import init_params

    assert len(jax.devices()) == 8, jax.devices()
    cfg = ModelConfig(architecture="qwen2", vocab_size=64, hidden_size=64, intermediate_size=128, num_layers=2,
                      num_heads=8, num_kv_heads=8, head_dim=8, attention_bias=True, tie_word_embeddings=True)
    params = init_params(cfg, jax.random.key(0))
    lora = init_lora(cfg, LoraConfig(rank=8), jax.random.key(1))
    lora = jax.tree.map(lambda x: x + 0.01, lora)
    rng = np.random.default_rng(0)
    n, lp, lc = 16, 8, 8
    tokens = rng.integers(3, 64, (n, lp + lc)).astype(np.int32)
    attn = np.ones_like(tokens); attn[::3, :2] = 0
    loss_mask = np.ones((n, lc), np.float32); loss_mask[1::2, 5:] = 0; attn[:, lp:] = loss_mask
    batch = {"tokens": tokens, "attention_mask": attn, "loss_mask": loss_mask,
             "advantages": rng.normal(size=n).astype(np.float32)}
    schedule = lambda s: 1.0
    # clipped SGD with lr 1: the update is the (clipped) gradient itself, so parameter differences
    # measure gradient differences (Adam's first step, lr * sign(g), would amplify fp noise on
    # near-zero gradients)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(1.0))
    loss_cfg = LossConfig(loss_type="dapo", beta=0.05, max_completion_length=lc)

    def one_step(shape):
        mesh = sharding.make_mesh(*shape, devices=jax.devices()[: int(np.prod(shape))])
        rows = sharding.RowSharding(mesh)
        base = sharding.shard_params(mesh, params)
        state, state_sh = sharding.shard_train_state(mesh, init_train_state(lora, opt), opt)
        step = make_train_step(cfg, loss_cfg, opt, schedule, lora_scale=2.0, microbatch_size=8,
                               row_sharding=rows if rows.size > 1 else None, state_sharding=state_sh,
                               base_sharding=sharding.param_shardings(mesh, base))
        new_state, metrics = step(state, base, rows.put(batch), jax.random.key(0))
        q = base["layers"]["self_attn"]["q_proj"]["kernel"]
        a = new_state["lora"]["layers"]["self_attn"]["q_proj"]["a"]
        placement = {"q_kernel_shard": list(q.addressable_shards[0].data.shape),
                     "lora_a_shard": list(a.addressable_shards[0].data.shape),
                     "devices": len(q.sharding.device_set)}
        delta = jax.tree.map(lambda new, old: np.asarray(new) - np.asarray(old), new_state["lora"], lora)
        return float(metrics["loss"]), float(metrics["kl"]), delta, placement

    def sample(shape, temperature):
        mesh = sharding.make_mesh(*shape, devices=jax.devices()[: int(np.prod(shape))])
        sampler = sharding.make_sampler(cfg, grpo_toy.make_tokenizer(), mesh, max_prompt_len=32)
        base = sharding.shard_params(mesh, params)
        lo = jax.device_put(lora, sharding.lora_shardings(mesh, lora))
        out = sampler.generate(base, [[1, 5, 6, 7], [1, 9, 3]], lora=lo, lora_scale=2.0, num_samples=4,
                               max_new_tokens=6, temperature=temperature, key=jax.random.key(3))
        return out.completion_ids.tolist()

    ref_loss, ref_kl, ref_lora, ref_place = one_step((1, 1, 1))
    ref_greedy, ref_sampled = sample((1, 1, 1), 0.0), sample((1, 1, 1), 1.0)
    results = {"reference": {"loss": ref_loss, "kl": ref_kl, "placement": ref_place}}
    scale = max(float(np.max(np.abs(x))) for x in jax.tree.leaves(ref_lora))
    for shape in [(8, 1, 1), (2, 4, 1), (1, 8, 1), (2, 2, 2), (1, 1, 8)]:
        loss, kl, update, place = one_step(shape)
        diff = max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(update), jax.tree.leaves(ref_lora)))
        entry = {"loss": loss, "kl": kl, "update_rel_diff": diff / scale, "placement": place}
        if shape in [(8, 1, 1), (2, 2, 2), (1, 1, 8)]:
            entry.update(greedy_same=sample(shape, 0.0) == ref_greedy, sampled_same=sample(shape, 1.0) == ref_sampled)
        results["x".join(map(str, shape))] = entry
    print("RESULT " + json.dumps(results))
''')


@pytest.fixture(scope="module")
def mesh_results(tmp_path_factory):
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    script = tmp_path_factory.mktemp("mesh") / "mesh_check.py"
    script.write_text(f"TESTS_DIR = {tests_dir!r}\n" + SCRIPT)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=grpo_toy.enable_compile_cache())
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("shape", ["8x1x1", "2x4x1", "1x8x1", "2x2x2", "1x1x8"])
def test_update_and_sampling_match_single_device(mesh_results, shape):
    ref, got = mesh_results["reference"], mesh_results[shape]
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-5, abs=1e-6)
    assert got["kl"] == pytest.approx(ref["kl"], rel=1e-4, abs=1e-7)
    # the parameter update (= the clipped gradient) agrees to fp32 summation-order noise
    assert got["update_rel_diff"] < 1e-5
    if "greedy_same" in got:
        assert got["greedy_same"] and got["sampled_same"]
    assert got["placement"]["devices"] == 8


def test_parameters_are_really_split(mesh_results):
    # q_proj kernel [L=2, H=64, 64]: fsdp splits H, tensor splits the output columns
    assert mesh_results["reference"]["placement"]["q_kernel_shard"] == [2, 64, 64]
    assert mesh_results["8x1x1"]["placement"]["q_kernel_shard"] == [2, 64, 64]  # pure data parallel: replicated
    assert mesh_results["1x8x1"]["placement"]["q_kernel_shard"] == [2, 8, 64]
    assert mesh_results["2x4x1"]["placement"]["q_kernel_shard"] == [2, 16, 64]
    assert mesh_results["2x2x2"]["placement"]["q_kernel_shard"] == [2, 32, 32]
    assert mesh_results["1x1x8"]["placement"]["q_kernel_shard"] == [2, 64, 8]
    # LoRA a [2, 64, 8] follows the kernel's input split
    assert mesh_results["1x8x1"]["placement"]["lora_a_shard"] == [2, 8, 8]


def test_mesh_shape_errors_are_clear():
    from rftgym.trainers.sharding import MeshError, make_mesh

    with pytest.raises(MeshError, match="mesh data=2 x fsdp=2 x tensor=2 = 8 devices, but 1 are available"):
        make_mesh(2, 2, 2)
    with pytest.raises(MeshError, match="cannot be split into fsdp=3"):
        make_mesh(-1, 3, 1, devices=[object()] * 8)
