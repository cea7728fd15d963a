"""Train a tiny random Llama with ``VIPGRPOTrainer`` on CPU and record what happened.

Run by ``tests/test_integrations_trl.py`` (directly, or under
``torch.distributed.run`` for the multi-process case). Nothing is downloaded:
the tokenizer is a ``tokenizers`` WordLevel model trained on a few strings and
the model is built from a config with random weights.

The reward of a completion is a deterministic function of its prompt id, its
position in the generation batch (over all processes) and the step, so runs
with one and two processes see the same rewards and must agree exactly.

Writes ``<out>/rank<r>.json`` with, per generation batch: the counts the
trainer planned, what the reward function scored (global position, id,
reward), the advantages this process trained on, the logged advantages and
``frac_reward_zero_std``; rank 0 also saves the final planner.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (  # noqa: E402
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)
from trl import GRPOConfig  # noqa: E402

from vipcore import Planner  # noqa: E402
from vipcore.integrations.trl import VIPGRPOTrainer  # noqa: E402

NUM_PROMPTS = 16
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def tokenizer():
    texts = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(
        special_tokens=["[PAD]", "[UNK]", "[BOS]", "[EOS]"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]",
                                   unk_token="[UNK]", bos_token="[BOS]",
                                   eos_token="[EOS]")


def model(tok):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, max_position_embeddings=64,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id)
    return LlamaForCausalLM(cfg)


def dataset():
    ids = [f"q{i:02d}" for i in range(NUM_PROMPTS)]
    prompts = [" ".join(WORDS[i % len(WORDS):][:3]) for i in range(NUM_PROMPTS)]
    return Dataset.from_dict({"prompt": prompts, "id": ids})


def planner(ids, reward="binary"):
    emb = np.random.default_rng(0).normal(size=(len(ids), 3)).astype(np.float32)
    return Planner(emb, ids=ids, lower=2, upper=8, reward=reward,
                   # the published GP, embedding-driven: unseen prompts differ
                   predictor="gp_authors" if reward == "binary" else "gp")


def rank_world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Recorder:
    """The reward function: deterministic in (id, global position, step)."""

    __name__ = "vip_test_reward"

    def __init__(self, graded=False):
        self.scored: list[list] = []
        self.graded = graded

    def __call__(self, prompts, completions, id, trainer_state, **kwargs):
        rank, _ = rank_world()
        out = []
        for i, pid in enumerate(id):
            pos = rank * len(prompts) + i
            step = int(trainer_state.global_step)
            p = (int(pid[1:]) % 5) / 4
            u = np.random.default_rng([int(pid[1:]), pos, step]).random()
            r = float(u) if self.graded else float(u < p)
            self.scored.append([step, pos, pid, r])
            out.append(r)
        return out


class Probe(VIPGRPOTrainer):
    """Records the trainer's view of every generation batch."""

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        last = self.vip_last_batch
        self.probe.append(dict(
            step=int(self.state.global_step), ids=last["ids"],
            counts=[int(c) for c in last["counts"]],
            advantages=[float(a) for a in last["advantages"]],
            local_advantages=out["advantages"].tolist(),
            logged_advantages=list(self._logs["advantages"]),
            frac_reward_zero_std=self._metrics["train"]["frac_reward_zero_std"][-1],
            vip_metrics={k: v[-1] for k, v in self._metrics["train"].items()
                         if k.startswith("vip/")},
        ))
        return out


def build(a, out_dir, pl):
    tok = tokenizer()
    ds = dataset()
    n_proc = int(os.environ.get("WORLD_SIZE", "1"))  # before dist is set up
    cfg = GRPOConfig(
        output_dir=out_dir, per_device_train_batch_size=a.batch // n_proc // a.accum,
        gradient_accumulation_steps=a.accum, num_generations=a.n_bar,
        max_completion_length=4, max_steps=a.steps, learning_rate=1e-3,
        logging_steps=1, save_strategy="steps", save_steps=1, report_to="none",
        use_cpu=True, seed=0, bf16=False, beta=0.0, loss_type=a.loss,
        scale_rewards=a.scale, disable_tqdm=True, dataloader_num_workers=0,
        multi_objective_aggregation=a.aggregation,
        importance_sampling_level="sequence" if a.loss == "luspo" else "token",
    )
    funcs = [Recorder(graded=a.graded)]
    if a.aggregation == "normalize_then_sum":
        funcs.append(Recorder(graded=True))
    tr = Probe(model=model(tok), reward_funcs=funcs, args=cfg, train_dataset=ds,
               processing_class=tok, planner=pl, id_column="id",
               weight_prompts_equally=a.weight_equally)
    tr.probe = []
    return tr, funcs


VARIANTS = [
    dict(loss="grpo", scale="none"),
    dict(loss="bnpo", scale="batch"),
    dict(loss="dr_grpo", scale="group", weight_equally=True, graded=True),
    dict(loss="cispo", scale="group"),
    dict(loss="sapo", scale="group"),
    dict(loss="luspo", scale="group"),
    dict(loss="vespo", scale="group"),
    dict(loss="dapo", scale="group", aggregation="normalize_then_sum"),
    dict(loss="dapo", scale="group", graded=True),
]


def parse(argv=None, **overrides):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenario", default="train",
                    choices=["train", "resume", "variants"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="generation batch C")
    ap.add_argument("--accum", type=int, default=2)
    ap.add_argument("--n-bar", type=int, default=4)
    ap.add_argument("--loss", default="dapo")
    ap.add_argument("--scale", default="group")
    ap.add_argument("--aggregation", default="sum_then_normalize")
    ap.add_argument("--graded", action="store_true")
    ap.add_argument("--weight-equally", action="store_true")
    a = ap.parse_args(argv)
    for k, v in overrides.items():
        setattr(a, k, v)
    return a


def run(a, out, resume=None):
    """One training run; writes ``<out>/rank<r>.json`` (and the final planner)."""
    os.makedirs(out, exist_ok=True)
    binary = not a.graded and a.aggregation == "sum_then_normalize"
    pl = planner(list(dataset()["id"]), "binary" if binary else "continuous")
    tr, funcs = build(a, os.path.join(out, "ckpt"), pl)
    tr.train(resume_from_checkpoint=resume)
    rank, world = rank_world()
    backend = dist.get_backend() if world > 1 else None
    rec = dict(rank=rank, world=world, backend=backend, probe=tr.probe, args=vars(a),
               scored=[s for f in funcs[:1] for s in f.scored],
               scored2=[s for f in funcs[1:] for s in f.scored],
               log_history=tr.state.log_history, planner_replaced=tr.planner is not pl)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(rec, f)
    if rank == 0:
        tr.planner.save(os.path.join(out, "planner_final.npz"))
    return rec


def main(argv=None):
    a = parse(argv)
    if a.scenario == "train":
        run(a, a.out)
    elif a.scenario == "resume":
        # An uninterrupted run, the same run resumed after step 1, and (negative
        # control) resumed from a copy of the checkpoint without the planner.
        import shutil
        import warnings

        full = run(a, os.path.join(a.out, "full"))
        ck = os.path.join(a.out, "full", "ckpt", "checkpoint-1")
        run(a, os.path.join(a.out, "resumed"), resume=ck)
        bare = os.path.join(a.out, "bare-checkpoint-1")
        shutil.copytree(ck, bare)
        os.remove(os.path.join(bare, "vip_planner.npz"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run(a, os.path.join(a.out, "bare"), resume=bare)
        with open(os.path.join(a.out, "bare", "warnings.json"), "w") as f:
            json.dump([str(w.message) for w in caught], f)
        del full
    else:
        for i, v in enumerate(VARIANTS):
            run(parse(argv, steps=2, **v), os.path.join(a.out, f"variant{i}"))


if __name__ == "__main__":
    main()
