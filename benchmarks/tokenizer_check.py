"""The vectorised character-level tokenizer against the reference one, token for token, on every corpus.

Every text of every corpus in ../shared/data (each CSV cell, each line of a .txt, each string of a .json/.jsonl:
titles, turns, sentences, labels) is tokenised twice, by the fast tokenizer (transformers, Rust) and by
autocode's table lookup for character-level vocabularies, and the ids must be identical. The vocabulary is
built like bert-base-chinese's (no network here): the special tokens, every CJK Unified Ideograph, ASCII and
full-width punctuation, digits and Latin letters with their ``##`` continuations; once with lowercasing
(bert-base-chinese) and once without. Reported per corpus: texts, share of texts that took the table path,
mismatches (must be 0) and texts/s of both.

    python benchmarks/tokenizer_check.py                # writes results/tokenizer_check.md and .json
    python benchmarks/tokenizer_check.py --quick        # 2,000 texts per corpus
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

from _common import finish, header, log, meta, parser, write_result

csv.field_size_limit(sys.maxsize)


def corpus_strings(folder: Path, limit: int | None = None) -> list[str]:
    """Every string of a corpus folder: CSV cells, lines of .txt, string values of .json/.jsonl."""
    out: list[str] = []

    def walk(x):
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for path in sorted(folder.rglob("*")):
        suffix = path.suffix.lower()
        if suffix == ".csv":
            with open(path, encoding="utf-8", newline="") as f:
                for row in csv.reader(f):
                    out.extend(row)
        elif suffix == ".txt" and path.name != "SOURCE.txt":
            out.extend(path.read_text(encoding="utf-8").splitlines())
        elif suffix in (".json", ".jsonl"):
            text = path.read_text(encoding="utf-8")
            try:
                walk(json.loads(text))
            except json.JSONDecodeError:
                for line in text.splitlines():
                    if line.strip():
                        walk(json.loads(line))
    return out[:limit] if limit else out


def bert_chinese_like(lowercase: bool):
    """A WordPiece tokenizer with a bert-base-chinese-like vocabulary (built here, nothing downloaded)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(0x4E00, 0xA000)]
    chars += [chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum() or not lowercase or not chr(c).isupper()]
    chars += [chr(c) for c in range(0xFF01, 0xFF5F)] + [chr(c) for c in range(0x3001, 0x3020)] + list("“”‘’…—·")
    pieces = ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(special + chars + pieces))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--max-length", type=int, default=512)
    args = ap.parse_args(argv)

    from autocode.backends.transformer._chars import CharTokenizer
    from autocode.backends.transformer.inference import tokenize

    m = meta("tokenizer_check.py", argv)
    folders = sorted(p for p in args.data_dir.iterdir() if p.is_dir())
    results = []
    for lowercase in (True, False):
        tok = bert_chinese_like(lowercase)
        fast = CharTokenizer.from_tokenizer(tok)
        if fast is None:
            raise SystemExit("the bert-base-chinese-like tokenizer should qualify for the table path")
        for folder in folders:
            texts = corpus_strings(folder, 2000 if args.quick else None)
            if not texts:
                continue
            t = time.perf_counter()
            ref = tokenize(tok, texts, max_length=args.max_length, chars=False)
            t_ref = time.perf_counter() - t
            fast = CharTokenizer.from_tokenizer(tok)  # a fresh table: its learning is timed too
            t = time.perf_counter()
            got = fast.encode(texts, args.max_length)
            t_learn = time.perf_counter() - t
            t = time.perf_counter()
            fast.encode(texts, args.max_length)  # again, with every character known (a long corpus's steady state)
            t_fast = time.perf_counter() - t
            same_len = got.lengths == ref.lengths
            bad = int((~same_len).sum())
            if bad == 0 and (got.ids != ref.ids).any():
                bad = sum(int(not (got.row(i) == ref.row(i)).all()) for i in range(len(texts)))
            table = sum(1 for x in texts if all(fast._kind[ord(c)] in (1, 2) for c in x))  # noqa: SLF001
            r = {"corpus": folder.name, "lowercase": lowercase, "texts": len(texts),
                 "tokens": int(ref.lengths.sum()), "table_share": table / len(texts), "mismatches": bad,
                 "reference_texts_per_s": len(texts) / t_ref, "table_first_pass_texts_per_s": len(texts) / t_learn,
                 "table_texts_per_s": len(texts) / t_fast}
            log(f"{folder.name} lowercase={lowercase}: {len(texts):,} texts, {bad} mismatches, table "
                f"{100 * r['table_share']:.0f}%, {r['reference_texts_per_s']:,.0f} vs {r['table_texts_per_s']:,.0f}/s "
                f"(first pass {r['table_first_pass_texts_per_s']:,.0f}/s)")
            results.append(r)
    finish(m)
    lines = header("Vectorised character-level tokenizer against the reference", m) + [
        "Every string of every corpus, tokenised by the transformers fast tokenizer and by autocode's table "
        f"lookup (max_length {args.max_length}); vocabulary built like bert-base-chinese's.", "",
        "Table texts/s: the second pass, every character classified (the first pass also classifies each new "
        "character through the reference tokenizer, once per tokenizer). On the table path, runs of other "
        "characters (Latin words, numbers) go through the reference tokenizer, once per distinct run.", "",
        "| corpus | lowercase | texts | tokens | texts without a run of other characters | mismatches | reference texts/s | "
        "table texts/s (first pass) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['corpus']} | {r['lowercase']} | {r['texts']:,} | {r['tokens']:,} | "
                     f"{100 * r['table_share']:.0f}% | {r['mismatches']} | {r['reference_texts_per_s']:,.0f} | "
                     f"{r['table_texts_per_s']:,.0f} ({r['table_first_pass_texts_per_s']:,.0f}) |")
    name = "tokenizer_check-quick" if args.quick else "tokenizer_check"
    write_result(args.out_dir, name, m, lines, {"results": results})
    total = sum(r["mismatches"] for r in results)
    if total:
        log(f"{total} texts differ")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
