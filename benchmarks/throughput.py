"""Throughput of the core inference loop: text in, code scores out, for a whole corpus.

A synthetic corpus (20,000 segments by default, lengths lognormal with a median of 45 tokens, clipped to 8..256,
fixed seed) is scored by random-weight encoders of three shapes:

* ``12x768``  12 layers x 768 (bert-base-chinese)
* ``3x768``   3 layers x 768 (RBT3)
* ``12x384``  12 layers x 384 (multilingual-e5-small, XLM-R layout and vocabulary)

For each shape, in the same run:

* **naive**: the Hugging Face model in float32 with eager attention, batches of 32 in corpus order, padded to
  the longest text of the batch, scores copied to the host after every batch;
* **autocode**: :func:`autocode.backends.transformer.inference.score` (length-sorted token-budget batches, bf16, fused QKV + SDPA or
  variable-length attention, no host sync inside the loop; optionally ``--compile`` / ``--cuda-graphs``),

* **autocode on several devices** (``--devices all``, ``cuda:0,cuda:1`` or ``cpu,cpu``): one process per device
  (:class:`autocode.backends.transformer.devices.DevicePool`, started before timing), contiguous shards,
  scores merged in input order; end to end, each process tokenises its own shard;

both **model-only** (token ids ready on the host) and **end-to-end** from text (tokenising included; autocode
overlaps tokenising with the device, and for this character-level vocabulary looks characters up in a table
instead of calling the reference tokenizer: same ids, checked at the start of every run). Reported: segments/s, real (non-padding) tokens/s, and model FLOP
utilisation (MFU): model FLOPs on real tokens per second over the device's measured peak (a large bf16 matrix
product on a GPU, float32 on a CPU, as the CPU path runs in float32).

Run on a GPU::

    python benchmarks/throughput.py                     # all shapes, 20,000 segments
    python benchmarks/throughput.py --compile           # + torch.compile
    python benchmarks/throughput.py --compile --cuda-graphs

On every GPU of the machine as well::

    python benchmarks/throughput.py --devices all

CPU smoke test (128 segments; ``--shapes 2x64`` for a few seconds, as the test suite runs it)::

    python benchmarks/throughput.py --quick --device cpu

Results go to ``results/throughput_<device type>[_compiled][_graphs].md`` and ``.json`` (``cuda``, ``cpu``),
naming the machine, the commit and the command.
"""

from __future__ import annotations

import json
import time

import numpy as np
from _common import finish, header, log, meta, parser, write_result

SHAPES = {
    "12x768": dict(layers=12, hidden=768, heads=12, kind="bert", vocab=21128, note="bert-base-chinese"),
    "3x768": dict(layers=3, hidden=768, heads=12, kind="bert", vocab=21128, note="RBT3"),
    "12x384": dict(layers=12, hidden=384, heads=12, kind="xlm-roberta", vocab=250037, note="e5-small"),
}
N_CODES = 32


def shape_spec(shape: str) -> dict:
    """A named shape, or any ``LAYERSxHIDDEN`` (BERT, 64-dimensional heads), e.g. ``2x64`` for a quick test."""
    if shape in SHAPES:
        return SHAPES[shape]
    try:
        layers, hidden = (int(x) for x in shape.lower().split("x"))
    except ValueError:
        raise SystemExit(f"unknown shape {shape!r}: use {', '.join(SHAPES)} or LAYERSxHIDDEN") from None
    return dict(layers=layers, hidden=hidden, heads=max(1, hidden // 64), kind="bert", vocab=21128, note="custom")


# -- corpus ------------------------------------------------------------------------------------------------
def corpus_lengths(n: int, seed: int = 0) -> np.ndarray:
    """Tokens per segment (specials included): lognormal, median 45, clipped to 8..256."""
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.lognormal(np.log(45), 0.6, size=n)), 8, 256).astype(np.int64)


def make_tokenizer(n_chars: int = 21000):
    """A BERT-style WordPiece tokenizer over ``n_chars`` CJK characters: one token per character."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = [chr(0x4E00 + i) for i in range(n_chars)]
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    return fast, chars


def corpus_texts(lengths: np.ndarray, chars: list[str], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed + 1)
    pool = np.array(chars)
    return ["".join(pool[rng.integers(0, len(pool), size=int(n) - 2)]) for n in lengths]


# -- models ------------------------------------------------------------------------------------------------
def make_model(shape: str, attn: str):
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    s = shape_spec(shape)
    torch.manual_seed(0)
    kw = dict(vocab_size=s["vocab"], hidden_size=s["hidden"], num_hidden_layers=s["layers"],
              num_attention_heads=s["heads"], intermediate_size=4 * s["hidden"], attn_implementation=attn)
    if s["kind"] == "bert":
        model = BertModel(BertConfig(max_position_embeddings=512, pad_token_id=0, **kw), add_pooling_layer=False)
    else:
        model = XLMRobertaModel(XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1, **kw),
                                add_pooling_layer=False)
    return model.eval(), torch.nn.Linear(s["hidden"], N_CODES)


def flops_per_segment(shape: str, lengths: np.ndarray) -> np.ndarray:
    """Forward FLOPs per segment on its real tokens: 2 x (QKV + out + FFN) matrix products per token and
    the two attention products (QK^T, AV), per layer."""
    s = shape_spec(shape)
    H, L, FF = s["hidden"], s["layers"], 4 * s["hidden"]
    per_token = 2 * (4 * H * H + 2 * H * FF)
    return L * (lengths * per_token + 4 * lengths.astype(np.float64) ** 2 * H)


# -- timing ------------------------------------------------------------------------------------------------
def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_peak(device, quick: bool = False) -> tuple[float, str]:
    """Measured dense matrix-product peak in TFLOP/s (bf16 on CUDA, float32 on the CPU; smaller when ``quick``)."""
    import torch

    if device.type == "cuda":
        n, dtype, reps = 8192, torch.bfloat16, 50
    else:
        n, dtype, reps = (512 if quick else 1536), torch.float32, 4
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e12)
    return best, str(dtype).replace("torch.", "")


def naive_scores(model, head, tokenizer, device, texts=None, tokens=None, batch_size=32):
    """Hugging Face forward, float32, eager attention, batches of 32 in corpus order."""
    import torch

    out = []
    n = len(texts) if texts is not None else len(tokens)
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            if texts is not None:
                enc = tokenizer(texts[s : s + batch_size], padding=True, return_tensors="pt")
                ids, mask = enc["input_ids"], enc["attention_mask"]
            else:
                rows = [tokens.row(i) for i in range(s, min(n, s + batch_size))]
                L = max(len(r) for r in rows)
                ids = torch.zeros(len(rows), L, dtype=torch.long)
                mask = torch.zeros(len(rows), L, dtype=torch.long)
                for i, r in enumerate(rows):
                    ids[i, : len(r)] = torch.from_numpy(r.astype(np.int64))
                    mask[i, : len(r)] = 1
            ids, mask = ids.to(device), mask.to(device)
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask[..., None].float()
            out.append(head((h * m).sum(1) / m.sum(1)).cpu())
    return torch.cat(out).numpy()


def run_shape(shape, args, device, tokens, texts, tokenizer, lengths):
    import torch

    from autocode.backends.transformer.inference import build_scorer, score, score_texts

    res = {"shape": shape, "note": shape_spec(shape)["note"]}
    flops = flops_per_segment(shape, lengths)
    model, head = make_model(shape, attn="eager")
    model.to(device)
    head.to(device)

    def record(name, seconds, rows):
        res[name] = {
            "seconds": seconds, "segments": int(len(rows)),
            "segments_per_s": len(rows) / seconds,
            "tokens_per_s": float(lengths[rows].sum()) / seconds,
            "tflops": float(flops[rows].sum()) / seconds / 1e12,
        }

    # naive baseline, on the first naive_n segments
    nn_ = min(args.naive_n, len(tokens))
    rows = np.arange(nn_)
    sub = tokens.take(rows)
    naive_scores(model, head, tokenizer, device, tokens=sub.take(np.arange(min(64, nn_))))  # warm-up
    for name, kw in (("naive_model", dict(tokens=sub)), ("naive_e2e", dict(texts=texts[:nn_]))):
        sync(device)
        t = time.perf_counter()
        ref = naive_scores(model, head, tokenizer, device, **kw)
        sync(device)
        record(name, time.perf_counter() - t, rows)

    # autocode: the lean forward pass on a second model with the same (seeded) weights, built for SDPA
    model.cpu()
    scorer = build_scorer(*make_model(shape, attn="sdpa"))
    opts = dict(device=device, max_tokens=args.max_tokens, compile=args.compile, cuda_graphs=args.cuda_graphs,
                unpad=args.unpad, dtype=args.dtype)
    all_rows = np.arange(len(tokens))
    score(scorer, tokens.take(np.arange(min(len(tokens), 2048))), **opts)  # warm-up (and compile)
    if args.compile or args.cuda_graphs:
        score(scorer, tokens, **opts)  # every shape compiled once
    best = None
    for _ in range(args.repeats):
        sync(device)
        t = time.perf_counter()
        got = score(scorer, tokens, **opts)
        sync(device)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    record("autocode_model", best, all_rows)
    res["max_abs_diff_vs_naive"] = float(np.abs(got[:nn_] - ref).max())

    sync(device)
    t = time.perf_counter()
    score_texts(scorer, tokenizer, texts, max_length=512, chunk_size=args.chunk_size, **opts)
    sync(device)
    record("autocode_e2e", time.perf_counter() - t, all_rows)
    if len(args.device_list) > 1:
        run_pool(res, record, args, scorer, tokens, texts, tokenizer, opts)
    res["speedup_model"] = res["autocode_model"]["segments_per_s"] / res["naive_model"]["segments_per_s"]
    res["speedup_e2e"] = res["autocode_e2e"]["segments_per_s"] / res["naive_e2e"]["segments_per_s"]
    del model, scorer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def run_pool(res, record, args, scorer, tokens, texts, tokenizer, opts):
    """The same corpus on several devices, one process each (a pool started, and warmed up, before timing)."""
    from autocode.backends.transformer.devices import DevicePool

    opts = {k: v for k, v in opts.items() if k != "device"}
    scorer.to("cpu")  # each process moves its own copy to its device
    all_rows = np.arange(len(tokens))
    with DevicePool(scorer, args.device_list, threads=args.threads) as pool:
        pool.score(tokens.take(np.arange(min(len(tokens), 2048))), **opts)  # warm-up in every process
        best = None
        for _ in range(args.repeats):
            t = time.perf_counter()
            pool.score(tokens, **opts)
            best = min(best or np.inf, time.perf_counter() - t)
        record("devices_model", best, all_rows)
        t = time.perf_counter()
        pool.score_texts(tokenizer, texts, max_length=512, chunk_size=args.chunk_size, **opts)
        record("devices_e2e", time.perf_counter() - t, all_rows)
    res["devices"] = list(args.device_list)


def device_info(device) -> dict:
    """torch, transformers and the device (the GPU's name, or the CPU's torch threads)."""
    import torch

    info = {"torch": torch.__version__, "device": f"CPU ({torch.get_num_threads()} torch threads)"}
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        info["device"], info["cuda"] = torch.cuda.get_device_name(device), torch.version.cuda
    return info


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def to_markdown(report: dict) -> list[str]:
    d = report["device"]
    lines = [
        f"Device: **{d['device']}**; torch {d['torch']}, transformers {d.get('transformers', '?')}.",
        f"Corpus: {report['n_segments']:,} synthetic segments, lengths lognormal (median 45 tokens, clipped 8..256), "
        f"seed {report['seed']}; {report['real_tokens']:,} real tokens. Naive baseline measured on the first "
        f"{report['naive_n']:,} segments.",
        f"Measured peak: {report['peak_tflops']:.2f} TFLOP/s ({report['peak_dtype']} matrix product). "
        f"Options: {json.dumps(report['options'])}.",
        "",
        "| shape | run | segments/s | real tokens/s | model TFLOP/s | MFU | speed-up |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        n_dev = len(r.get("devices", []))
        for key, label in (("naive_model", "naive, model only"), ("autocode_model", "autocode, model only"),
                           ("devices_model", f"autocode on {n_dev} devices, model only"),
                           ("naive_e2e", "naive, end to end"), ("autocode_e2e", "autocode, end to end"),
                           ("devices_e2e", f"autocode on {n_dev} devices, end to end")):
            if key not in r:
                continue
            x = r[key]
            sp = ""
            if key == "autocode_model":
                sp = f"{r['speedup_model']:.1f}x"
            elif key == "autocode_e2e":
                sp = f"{r['speedup_e2e']:.1f}x"
            elif key.startswith("devices_"):
                base = r["naive_model" if key == "devices_model" else "naive_e2e"]["segments_per_s"]
                sp = f"{x['segments_per_s'] / base:.1f}x"
            lines.append(f"| {r['shape']} ({r['note']}) | {label} | {_num(x['segments_per_s'])} | "
                         f"{_num(x['tokens_per_s'])} | {x['tflops']:.3g} | {100 * x['mfu']:.1f}% | {sp} |")
    lines += ["", f"Tokenizer alone: {report['tokenizer_segments_per_s']:,.0f} segments/s "
                  f"({report['tokenizer_seconds']:.2f} s for the corpus) with the table path for character-level "
                  f"vocabularies (autocode's default), {report['tokenizer_reference_segments_per_s']:,.0f} "
                  "segments/s through the reference fast tokenizer.", ""]
    if any("devices" in r for r in report["results"]):
        lines += ["Several devices: one process per device (a DevicePool started before timing), the corpus cut "
                  "into contiguous shards by tokens, scores merged in input order; end to end, each process "
                  "tokenises its own shard.", ""]
    if report.get("note"):
        lines += [report["note"], ""]
    return lines


def main(argv=None) -> int:
    ap = parser(__doc__, data=False)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n", type=int, default=20000, help="segments in the synthetic corpus")
    ap.add_argument("--naive-n", type=int, default=5000, help="segments the naive baseline runs on")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--max-tokens", type=int, default=None, help="token budget per batch")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--unpad", default="auto", choices=["auto", "true", "false"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--cuda-graphs", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=4096, help="texts per streamed chunk end to end")
    ap.add_argument("--devices", default=None,
                    help="also run on several devices, one process each: 'all', or e.g. cpu,cpu or cuda:0,cuda:1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--note", default="", help="a sentence added to the report")
    args = ap.parse_args(argv)
    args.unpad = {"auto": "auto", "true": True, "false": False}[args.unpad]
    if args.quick:  # the CPU smoke size
        args.n, args.naive_n, args.repeats, args.chunk_size = min(args.n, 128), min(args.naive_n, 32), 1, 64

    import torch

    from autocode.backends.transformer.inference import resolve_device, tokenize

    m = meta("throughput.py", argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    args.device_list = []
    if args.devices:
        from autocode.backends.transformer.devices import parse_devices

        args.device_list = parse_devices(args.devices)
    lengths = corpus_lengths(args.n, args.seed)
    tokenizer, chars = make_tokenizer()
    texts = corpus_texts(lengths, chars, args.seed)
    t = time.perf_counter()
    ref_tokens = tokenize(tokenizer, texts, max_length=512, chars=False)
    ref_tok_s = time.perf_counter() - t
    t = time.perf_counter()
    tokens = tokenize(tokenizer, texts, max_length=512)
    tok_s = time.perf_counter() - t
    if not (np.array_equal(tokens.ids, ref_tokens.ids) and np.array_equal(tokens.offsets, ref_tokens.offsets)):
        raise SystemExit("the table path should give the reference tokenizer's ids")
    if not (tokens.lengths == lengths).all() or (tokens.ids == 1).any():
        raise SystemExit("the synthetic tokenizer should give one known token per character")
    peak, peak_dtype = measure_peak(device, args.quick)
    log(f"device {device}; peak {peak:.2f} TFLOP/s ({peak_dtype}); tokenizer {args.n / tok_s:,.0f} seg/s")
    results = []
    for shape in args.shapes.split(","):
        r = run_shape(shape, args, device, tokens, texts, tokenizer, lengths)
        log(f"{shape}: naive {r['naive_model']['segments_per_s']:,.0f} seg/s, autocode "
            f"{r['autocode_model']['segments_per_s']:,.0f} seg/s model-only "
            f"({r['autocode_model']['tflops']:.3f} TFLOP/s), e2e {r['autocode_e2e']['segments_per_s']:,.0f}")
        results.append(r)
    # a shared machine can be slow at any moment: the best of two peak measurements (before and after)
    peak = max(peak, measure_peak(device, args.quick)[0])
    for r in results:
        for key in ("naive_model", "autocode_model", "naive_e2e", "autocode_e2e", "devices_model", "devices_e2e"):
            if key in r:
                r[key]["mfu"] = r[key]["tflops"] / peak
    report = {
        "format": "autocode-throughput", "format_version": 3, "device_type": device.type,
        "device": device_info(device), "n_segments": args.n, "naive_n": min(args.naive_n, args.n),
        "seed": args.seed, "real_tokens": int(lengths.sum()), "median_tokens": float(np.median(lengths)),
        "peak_tflops": peak, "peak_dtype": peak_dtype,
        "tokenizer_seconds": tok_s, "tokenizer_segments_per_s": args.n / tok_s,
        "tokenizer_reference_segments_per_s": args.n / ref_tok_s,
        "options": {"max_tokens": args.max_tokens, "dtype": args.dtype, "unpad": args.unpad, "devices": args.devices,
                    "compile": args.compile, "cuda_graphs": args.cuda_graphs, "quick": args.quick,
                    "torch_threads": torch.get_num_threads()},
        "note": args.note, "results": results,
    }
    finish(m)
    lines = header(f"Inference throughput ({device.type})", m) + to_markdown(report)
    stem = f"throughput_{device.type}" + ("_compiled" if args.compile else "") + ("_graphs" if args.cuda_graphs else "")
    write_result(args.out_dir, stem, m, lines, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
