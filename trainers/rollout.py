"""Rollouts: prompts from a mixture of rftgym environments, replies from the policy, rewards
from the environments' evaluators, packed into a fixed-shape training batch.

One call of `collect` for P prompts x G replies:

1. pick P (env, row) pairs: the env by the mixture weights, the row from that env's seeded
   shuffled order (the position in that order is saved in checkpoints);
2. reset one `GroupVectorEnv` per env with those rows; render each prompt with the model's
   chat template into token ids;
3. sample G replies per prompt in one batched `Sampler.generate` call;
4. step the group envs (scoring runs concurrently on their worker pools); multi-turn members
   keep going, the policy answering every env message, until every member is done;
5. pack ``[prompt | completion region]`` rows with a loss mask over the generated tokens.

Shapes are bucketed (powers of two) so the jit-compiled update sees few distinct shapes.
"""

from __future__ import annotations

import inspect
import time
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

MIN_BUCKET = 16


def bucket(length: int, cap: int | None = None, minimum: int = MIN_BUCKET) -> int:
    """Smallest power of two >= length (at least `minimum`), never above `cap`."""
    size = minimum
    while size < length:
        size *= 2
    if cap is not None:
        size = min(size, max(cap, length))
    return size


# ----------------------------------------------------------------------------- chat rendering


class ChatEncoder:
    """Conversation -> prompt token ids with the tokenizer's chat template."""

    def __init__(self, tokenizer, max_prompt_len: int = 512):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template; rftgym environments are conversations, "
                             "so use an instruct/chat model (or set tokenizer.chat_template)")
        self.tokenizer = tokenizer
        self.max_prompt_len = max_prompt_len

    def render(self, messages: list[dict], *, generation_prompt: bool = True, tools=None) -> str:
        kwargs = {"tools": tools} if tools else {}
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=generation_prompt, **kwargs)

    def encode_text(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, messages: list[dict], tools=None) -> list[int]:
        """Token ids of the conversation followed by the assistant generation prompt
        (cut from the left to `max_prompt_len`)."""
        ids = self.encode_text(self.render(messages, tools=tools))
        return ids[-self.max_prompt_len:]

    def continuation_ids(self, before: list[dict], after: list[dict], tools=None,
                         reply_ended: bool = True) -> list[int] | None:
        """Tokens that follow a generated reply when the env answers with `after` messages, up to
        the next generation prompt; None when the template cannot be continued by appending
        (the caller then re-renders the whole conversation).

        The reply is rendered as a placeholder: what the template puts after the reply's
        content (minus the stop token the model already generated) plus the env's messages.
        """
        convo = before + [{"role": "assistant", "content": _PLACEHOLDER}]
        head = self.render(convo, generation_prompt=False, tools=tools)
        full = self.render(convo + after, generation_prompt=True, tools=tools)
        if not full.startswith(head) or head.count(_PLACEHOLDER) != 1:
            return None
        tail = head[head.index(_PLACEHOLDER) + len(_PLACEHOLDER):]
        eos = self.tokenizer.eos_token or ""
        if reply_ended and eos and tail.startswith(eos):
            tail = tail[len(eos):]  # the generated tokens already end with the stop token
        return self.encode_text(tail + full[len(head):])


_PLACEHOLDER = "\u2063reply\u2063"  # invisible separators: never in a real conversation


# ----------------------------------------------------------------------------- environments


def _check_registered(env_id: str) -> None:
    import gymnasium as gym

    import rftgym  # noqa: F401  (registers the rft/* ids)

    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("rft/"))
        raise ValueError(f"unknown environment {env_id!r}; registered rftgym environments: {', '.join(known)}")


def _env_class(env_id: str):
    import gymnasium as gym

    _check_registered(env_id)
    spec = gym.spec(env_id)
    entry = spec.entry_point
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        import importlib

        return getattr(importlib.import_module(module), name), dict(spec.kwargs or {})
    return entry, dict(spec.kwargs or {})


def eval_kwargs_for(spec) -> tuple[dict[str, Any], bool]:
    """(constructor kwargs for evaluation, whether they select a held-out split)."""
    if spec.eval_kwargs is not None:
        return dict(spec.eval_kwargs), True
    if "split" in spec.kwargs:
        return {**spec.kwargs, "split": "test"}, True
    if _takes_split(spec):
        return {**spec.kwargs, "split": "test"}, True
    return dict(spec.kwargs), False


def _takes_split(spec) -> bool:
    """Whether the env's constructor has a ``split`` argument (and no own dataset is given)."""
    if "dataset" in spec.kwargs:
        return False
    cls, _ = _env_class(spec.id)
    return "split" in inspect.signature(cls.__init__).parameters


def train_kwargs_for(spec) -> dict[str, Any]:
    """Constructor kwargs for training (``split="train"`` when the env has splits)."""
    if "split" not in spec.kwargs and _takes_split(spec):
        return {**spec.kwargs, "split": "train"}
    return dict(spec.kwargs)


class EnvGroups:
    """Group vector envs of one environment, one per number of prompts (built on demand)."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], group_size: int, executor: Executor):
        import rftgym

        _check_registered(env_id)
        self.env_id, self.kwargs, self.group_size = env_id, kwargs, group_size
        self.executor = executor
        self._envs: dict[int, Any] = {}
        try:
            first = self.get(1)
        except TypeError as e:
            raise ValueError(f"cannot build {env_id} with {kwargs}: {e}") from None
        self.size = first.dataset_size
        member = first.envs[0]
        self.multi_turn = bool(getattr(member, "multi_turn", isinstance(member, rftgym.MultiTurnTextEnv)))

    def get(self, num_prompts: int):
        if num_prompts not in self._envs:
            import rftgym

            self._envs[num_prompts] = rftgym.make_group_env(
                self.env_id, num_prompts=num_prompts, group_size=self.group_size,
                executor=self.executor, **self.kwargs)
        return self._envs[num_prompts]

    def close(self):
        for env in self._envs.values():
            env.close()


class DataOrder:
    """Seeded shuffled order over each env's rows, without replacement within an epoch (or the
    rows in file order with ``shuffle=False``).

    The order of epoch k of env e is a permutation drawn from (seed, e, k), so the position
    (epoch, cursor) alone restores it.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int, shuffle: bool = True):
        self.sizes = list(sizes)
        self.shuffle = shuffle
        w = np.asarray(weights, dtype=np.float64)
        self.probs = w / w.sum()
        self.seed = seed
        self.position = [[0, 0] for _ in sizes]  # [epoch, cursor] per env
        self._perm: dict[tuple[int, int], np.ndarray] = {}

    def _order(self, env: int, epoch: int) -> np.ndarray:
        key = (env, epoch)
        if key not in self._perm:
            self._perm = {k: v for k, v in self._perm.items() if k[0] != env}
            if self.shuffle:
                self._perm[key] = np.random.default_rng([self.seed, env, epoch]).permutation(self.sizes[env])
            else:
                self._perm[key] = np.arange(self.sizes[env])
        return self._perm[key]

    def next_rows(self, step: int, count: int) -> list[tuple[int, int]]:
        """`count` (env, row) pairs for training step `step`."""
        if len(self.sizes) == 1:
            envs = [0] * count
        else:
            envs = np.random.default_rng([self.seed, 7919, step]).choice(len(self.sizes), size=count, p=self.probs)
        out = []
        for e in envs:
            e = int(e)
            epoch, cursor = self.position[e]
            if cursor >= self.sizes[e]:
                epoch, cursor = epoch + 1, 0
            out.append((e, int(self._order(e, epoch)[cursor])))
            self.position[e] = [epoch, cursor + 1]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "sizes": self.sizes, "position": [list(p) for p in self.position]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["sizes"]) != self.sizes:
            raise ValueError(f"the environments' dataset sizes changed since the checkpoint "
                             f"({state['sizes']} then, {self.sizes} now): the data order cannot be resumed")
        self.position = [list(map(int, p)) for p in state["position"]]


def make_executor(kind: str, max_workers: int | None = None) -> Executor:
    if kind == "process":
        import multiprocessing

        # forkserver: forking a process that runs JAX threads can deadlock
        return ProcessPoolExecutor(max_workers, mp_context=multiprocessing.get_context("forkserver"))
    return ThreadPoolExecutor(max_workers or 32, thread_name_prefix="rftgym-score")


# ----------------------------------------------------------------------------- episodes


@dataclass
class Episode:
    """One member's trajectory: prompt tokens, then the completion region."""

    env: int
    row: int
    prompt_ids: list[int]
    region: list[int] = field(default_factory=list)  # generated turns + env turns
    mask: list[int] = field(default_factory=list)  # 1 on generated tokens
    logprobs: list[float] = field(default_factory=list)  # sampler log-probs (0 on env tokens)
    messages: list[dict] = field(default_factory=list)  # the conversation as the env sees it
    replies: list[str] = field(default_factory=list)
    reward: float = 0.0
    evaluation: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False  # a reply hit max_new_tokens
    turns: int = 0
    done: bool = False
    tools: Any = None
    pending: Any = None  # (conversation before the last reply, the env's answer to it)
    last_truncated: bool = False

    @property
    def generated(self) -> int:
        return int(sum(self.mask))


@dataclass
class SamplingSettings:
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0


class RolloutWorker:
    """Runs episodes of P prompts x G replies on a set of environments with a policy."""

    def __init__(self, encoder: ChatEncoder, sampler, params, *, lora_scale: float,
                 stop_token_ids=None):
        self.encoder = encoder
        self.sampler = sampler
        self.params = params
        self.lora_scale = lora_scale
        self.stop_token_ids = stop_token_ids

    # --------------------------------------------------------------------------------
    def run(self, groups: Sequence[EnvGroups], rows: Sequence[tuple[int, int]], group_size: int, lora,
            key, settings: SamplingSettings, reset_seed: int | None = None) -> tuple[list[Episode], dict]:
        """Play every (env index into `groups`, row) with `group_size` members; returns
        (episodes, timings {"sample_s", "score_s"}).

        Episodes come prompt by prompt, G consecutive members per prompt, in `rows` order.
        """
        import jax

        timings = {"sample_s": 0.0, "score_s": 0.0}
        by_env: dict[int, list[int]] = {}
        for slot, (e, _) in enumerate(rows):
            by_env.setdefault(e, []).append(slot)
        episodes: list[Episode | None] = [None] * (len(rows) * group_size)
        active_envs = []
        for e, slots in by_env.items():
            genv = groups[e].get(len(slots))
            indices = [rows[s][1] for s in slots]
            seed = None if reset_seed is None else int(reset_seed + 7 * e) % (2**31 - 1)
            obs, infos = genv.reset(seed=seed, options={"indices": indices})
            for j, slot in enumerate(slots):
                for g in range(group_size):
                    member = j * group_size + g
                    tools = infos[member].get("tools")
                    episodes[slot * group_size + g] = Episode(
                        env=e, row=indices[j], prompt_ids=[], messages=obs[member], tools=tools)
            active_envs.append((e, slots, genv))
        eps: list[Episode] = episodes  # type: ignore[assignment]

        # turn 1: one prompt per group, G samples each
        prompts = [self.encoder.prompt_ids(eps[s * group_size].messages, eps[s * group_size].tools)
                   for s in range(len(rows))]
        for s, ids in enumerate(prompts):
            for g in range(group_size):
                eps[s * group_size + g].prompt_ids = ids
        t0 = time.perf_counter()
        out = self.sampler.generate(self.params, prompts, lora=lora, lora_scale=self.lora_scale,
                                    num_samples=group_size, max_new_tokens=settings.max_new_tokens,
                                    temperature=settings.temperature, top_k=settings.top_k,
                                    top_p=settings.top_p, key=jax.random.fold_in(key, 0),
                                    stop_token_ids=self.stop_token_ids)
        timings["sample_s"] += time.perf_counter() - t0
        self._append_turn(eps, list(range(len(eps))), out)

        turn = 1
        while True:
            t0 = time.perf_counter()
            for e, slots, genv in active_envs:
                members = [s * group_size + g for s in slots for g in range(group_size)]
                actions = [eps[m].replies[-1] if not eps[m].done else "" for m in members]
                if genv.all_done:
                    continue
                obs, rewards, term, trunc, infos = genv.step(actions)
                for local, m in enumerate(members):
                    if not infos[local].get("active", True) or eps[m].done:
                        continue
                    ep = eps[m]
                    ep.turns += 1
                    before = ep.messages
                    ep.messages = obs[local]
                    if term[local] or trunc[local]:
                        ep.done = True
                        ep.reward = float(genv.episode_rewards[local])
                        ep.evaluation = infos[local].get("evaluation", {})
                    else:
                        ep.pending = (before, obs[local][len(before) + 1:])  # env's answer
            timings["score_s"] += time.perf_counter() - t0
            pending = [m for m, ep in enumerate(eps) if not ep.done]
            if not pending:
                break
            turn += 1
            prompts = []
            for m in pending:
                ep = eps[m]
                before, after = ep.pending
                cont = self.encoder.continuation_ids(before, after, ep.tools,
                                                     reply_ended=not ep.last_truncated)
                if cont is None:  # template is not append-only: re-render and re-tokenize
                    warnings.warn("chat template is not append-only; multi-turn tokens re-rendered",
                                  stacklevel=2)
                    full = self.encoder.prompt_ids(ep.messages, ep.tools)
                    cont = full[len(ep.prompt_ids) + len(ep.region):] if full[:len(ep.prompt_ids)] == ep.prompt_ids else []
                ep.region += cont
                ep.mask += [0] * len(cont)
                ep.logprobs += [0.0] * len(cont)
                # a very long episode keeps its most recent context; the training row only keeps
                # the first max_episode_tokens of the completion region anyway
                limit = getattr(self.sampler, "max_prompt_len", None)
                context = ep.prompt_ids + ep.region
                prompts.append(context[-limit:] if limit else context)
            t0 = time.perf_counter()
            out = self.sampler.generate(self.params, prompts, lora=lora, lora_scale=self.lora_scale,
                                        num_samples=1, max_new_tokens=settings.max_new_tokens,
                                        temperature=settings.temperature, top_k=settings.top_k,
                                        top_p=settings.top_p, key=jax.random.fold_in(key, turn),
                                        stop_token_ids=self.stop_token_ids)
            timings["sample_s"] += time.perf_counter() - t0
            self._append_turn(eps, pending, out)
        return eps, timings

    @staticmethod
    def _append_turn(eps: list[Episode], members: list[int], out) -> None:
        for row, m in enumerate(members):
            ep = eps[m]
            n = int(out.lengths[row])
            ids = [int(t) for t in out.completion_ids[row, :n]]
            ep.region += ids
            ep.mask += [1] * n
            ep.logprobs += [float(x) for x in out.logprobs[row, :n]]
            ep.replies.append(out.texts[row])
            ep.last_truncated = out.finish_reasons[row] == "length"
            ep.truncated = ep.truncated or ep.last_truncated


# ----------------------------------------------------------------------------- packing


def pack_batch(episodes: Sequence[Episode], pad_id: int, *, max_prompt_len: int,
               max_region: int | None = None, mask_truncated: bool = False) -> dict[str, np.ndarray]:
    """Episodes -> fixed-shape arrays (see grpo.py): prompts left-padded to a bucket, the
    completion region right-padded to a bucket."""
    longest_prompt = max(len(e.prompt_ids) for e in episodes)
    longest_region = max(max(len(e.region), 1) for e in episodes)
    if max_region is not None:
        longest_region = min(longest_region, max_region)
    lp = bucket(longest_prompt, cap=max_prompt_len)
    lc = bucket(longest_region, cap=max_region)
    n = len(episodes)
    tokens = np.full((n, lp + lc), pad_id, np.int32)
    attn = np.zeros((n, lp + lc), np.int32)
    loss_mask = np.zeros((n, lc), np.float32)
    old_logprobs = np.zeros((n, lc), np.float32)
    for i, ep in enumerate(episodes):
        p = ep.prompt_ids[-lp:]
        tokens[i, lp - len(p):lp] = p
        attn[i, lp - len(p):lp] = 1
        region = ep.region[:lc]
        tokens[i, lp:lp + len(region)] = region
        attn[i, lp:lp + len(region)] = 1
        if not (mask_truncated and ep.truncated):
            loss_mask[i, :len(region)] = ep.mask[:lc]
        old_logprobs[i, :len(region)] = ep.logprobs[:lc]
    return {"tokens": tokens, "attention_mask": attn, "loss_mask": loss_mask,
            "sampler_logprobs": old_logprobs}


def rollout_metrics(episodes: Sequence[Episode], env_ids: Sequence[str], group_size: int,
                    zero_std: np.ndarray) -> dict[str, float]:
    """Reward and reply statistics of one batch (overall, per env, per evaluator metric)."""
    rewards = np.array([e.reward for e in episodes], np.float64)
    lengths = np.array([e.generated for e in episodes], np.float64)
    m: dict[str, float] = {
        "reward": float(rewards.mean()),
        "reward_std": float(rewards.std()),
        "frac_reward_zero_std": float(np.mean(zero_std)) if len(zero_std) else 0.0,
        "reply_length": float(lengths.mean()),
        "reply_length_max": float(lengths.max()),
        "truncated_frac": float(np.mean([e.truncated for e in episodes])),
        "turns": float(np.mean([e.turns for e in episodes])),
    }
    if len(env_ids) > 1:
        for i, name in enumerate(env_ids):
            sel = [e.reward for e in episodes if e.env == i]
            if sel:
                m[f"reward/{name}"] = float(np.mean(sel))
    sums: dict[str, list[float]] = {}
    for e in episodes:
        for k, v in (e.evaluation.get("metrics") or {}).items():
            if isinstance(v, (int, float)) and np.isfinite(v):
                sums.setdefault(k, []).append(float(v))
    for k, vals in sums.items():
        m[f"metrics/{k}"] = float(np.mean(vals))
    return m
