"""`palettize compress` (and `palettize decompress`) checked against coremltools.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv/bin/python -m pytest test/oracle/test_compress_oracle.py -s

For every case of CASES (a model x a config) the CLI runs once (cached for the session) and:
  * test_compress_case: exit 0; the input is untouched; coremltools loads the output;
    coremltools' decompression (decompress_weights, or its WeightDecompressor pass on the pymil
    program for multifunction models / pipelines, which decompress_weights refuses) gives values
    bit-identical to `palettize decompress`; skipped weights are bit-identical to the input;
    the report's sse / max_abs_error / snr_db / bytes / nbits / luts / config / config_source /
    consumers match a recomputation; each table holds <= 2^nbits distinct values (vectors for
    cluster_dim > 1); the op chain has the iOS16 attribute form or the iOS18 input form matching
    the report's target; spec versions / opsets match the report's targets and the target rules.
  * test_kmeans_sse_vs_coremltools: coremltools' palettize_weights on a copy of the input raised
    to the same target, same config; both tools palettize the same weights; our SSE <= theirs
    (scalar k-means, and vector k-means, cluster_dim > 1, since issue 16: ratios printed).
Plus determinism, --dry-run and refusal tests.
"""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

import compress_oracle as co
from oracle_conftest import REPO_ROOT, SUBPROCESS_TIMEOUT, expected_candidate, hash_tree, load_mlmodel

CONFIGS_DIR = REPO_ROOT / "configs"
SKIP_KEYS = {"seconds", "wall_seconds"}


# --------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    model: str
    flags: list = field(default_factory=list)
    yaml: str = None  # YAML text written to tmp, or "seed:<file in configs/>"
    ct: bool = False  # compare k-means SSE with coremltools' palettize_weights

    def __str__(self):
        return self.id


OPTYPE_CONV_YAML = """\
config_type: OpPalettizerConfig
global_config:
  mode: kmeans
  nbits: 6
op_type_configs:
  conv:
    mode: uniform
    nbits: 4
  conv_transpose:
    mode: kmeans
    nbits: 2
"""

OPNAME_CONV_YAML = """\
config_type: OpPalettizerConfig
global_config:
  mode: kmeans
  nbits: 4
op_name_configs:
  deconv_has_output_shape:
    mode: kmeans
    nbits: 2
  conv1: null
"""

# One consumer-op name and one const name (lookup order: const name first).
OPNAME_KERAS_YAML = """\
config_type: OpPalettizerConfig
global_config:
  mode: kmeans
  nbits: 4
op_type_configs:
  conv:
    mode: kmeans
    nbits: 6
op_name_configs:
  conv_0_cast_fp16:
    mode: uniform
    nbits: 8
  model_batch_normalization_5_batchnorm_mul_1_weight_0_to_fp16: null
  model_sequential_batch_normalization_batchnorm_mul_1_weight_0_to_fp16:
    mode: kmeans
    nbits: 2
"""

G = ["--granularity", "per_grouped_channel"]

CASES = [
    # defaults: kmeans 6-bit per_tensor, threshold 2048
    Case("default-mnist", "shared/mnist", [], ct=True),
    Case("default-keras", "shared/keras_video", [], ct=True),
    Case("default-conv", "fixture/conv", [], ct=True),
    Case("default-cond", "fixture/cond", [], ct=True),
    Case("default-misc", "fixture/misc", [], ct=True),
    Case("default-compressed_ios18", "fixture/compressed_ios18", [], ct=True),
    Case("default-immediate_fp16", "fixture/immediate_fp16", [], ct=True),
    Case("default-multifunction", "fixture/multifunction", []),
    Case("default-pipeline", "fixture/pipeline", []),
    Case("default-immediate_fp32", "fixture/immediate_fp32", [], ct=True),
    Case("default-compressed_ios16", "fixture/compressed_ios16", [], ct=True),
    Case("thr0-kmeans2-activity_fp16", "shared/activity_fp16", ["--weight-threshold", "0", "--nbits", "2"], ct=True),
    Case("thr0-kmeans2-activity_fp32", "shared/activity_fp32", ["--weight-threshold", "0", "--nbits", "2"], ct=True),
    # kmeans nbits 1/2/3/4/8 (6 above)
    Case("kmeans1-linear_fp32", "fixture/linear_fp32", ["--nbits", "1"], ct=True),
    Case("kmeans2-embedding", "fixture/embedding", ["--mode", "kmeans", "--nbits", "2"], ct=True),
    Case("kmeans3-keras", "shared/keras_video", ["--nbits", "3"], ct=True),
    Case("kmeans4-matmul", "fixture/matmul", ["--nbits", "4"], ct=True),
    Case("kmeans8-linear_fp16", "fixture/linear_fp16", ["--nbits", "8"], ct=True),
    # uniform / unique
    Case("uniform4-mnist", "shared/mnist", ["--mode", "uniform", "--nbits", "4"]),
    Case("uniform8-conv", "fixture/conv", ["--mode", "uniform", "--nbits", "8"]),
    Case("uniform2-compressed_ios16", "fixture/compressed_ios16", ["--mode", "uniform", "--nbits", "2"]),
    Case("unique-misc", "fixture/misc", ["--mode", "unique"]),
    Case("unique-misc-all", "fixture/misc", ["--mode", "unique", "--weight-threshold", "0"]),
    # per_grouped_channel
    Case("g16-kmeans4-mnist", "shared/mnist", G + ["--group-size", "16", "--nbits", "4"], ct=True),
    Case("g8-kmeans6-conv", "fixture/conv", G + ["--group-size", "8"], ct=True),
    Case("g4-kmeans4-linear_fp16", "fixture/linear_fp16", G + ["--group-size", "4", "--nbits", "4"], ct=True),
    Case("g8-uniform4-cond", "fixture/cond", G + ["--group-size", "8", "--mode", "uniform", "--nbits", "4"]),
    # vector k-means
    Case("cd2-kmeans4-linear_fp32", "fixture/linear_fp32", ["--cluster-dim", "2", "--nbits", "4"], ct=True),
    Case("cd4-kmeans4-conv", "fixture/conv", ["--cluster-dim", "4", "--nbits", "4"], ct=True),
    Case("cd2-g16-kmeans3-matmul", "fixture/matmul", G + ["--group-size", "16", "--cluster-dim", "2", "--nbits", "3"],
         ct=True),
    # per-channel scale
    Case("pcs-kmeans4-mnist", "shared/mnist", ["--per-channel-scale", "--nbits", "4"], ct=True),
    Case("pcs-kmeans6-linear_fp32", "fixture/linear_fp32", ["--per-channel-scale"], ct=True),
    Case("pcs-g8-kmeans4-conv", "fixture/conv", ["--per-channel-scale", "--nbits", "4"] + G + ["--group-size", "8"],
         ct=True),
    # quantized LUTs
    Case("int8lut-kmeans4-matmul", "fixture/matmul", ["--lut-dtype", "int8", "--nbits", "4"]),
    Case("int8lut-kmeans6-mnist", "shared/mnist", ["--lut-dtype", "int8"]),
    Case("uint8lut-kmeans4-linear_fp16", "fixture/linear_fp16", ["--lut-dtype", "uint8", "--nbits", "4"]),
    Case("g8-kmeans4-misc", "fixture/misc", G + ["--group-size", "8", "--nbits", "4"], ct=True),
    Case("g16-axis1-kmeans4-linear_fp32", "fixture/linear_fp32",
         G + ["--group-size", "16", "--channel-axis", "1", "--nbits", "4"], ct=True),
    Case("target18-kmeans6-mnist", "shared/mnist", ["--minimum-deployment-target", "iOS18"], ct=True),
    Case("int8lut-pcs-g8-kmeans4-conv", "fixture/conv",
         ["--lut-dtype", "int8", "--per-channel-scale", "--nbits", "4"] + G + ["--group-size", "8"]),
    Case("pcs-kmeans4-pipeline", "fixture/pipeline", ["--per-channel-scale", "--nbits", "4"]),
    Case("g16-uniform4-multifunction", "fixture/multifunction", G + ["--group-size", "16", "--mode", "uniform", "--nbits", "4"]),
    Case("cd2-kmeans2-cond", "fixture/cond", ["--cluster-dim", "2", "--nbits", "2"], ct=True),
    # YAML overrides
    Case("yaml-optype-conv", "fixture/conv", yaml=OPTYPE_CONV_YAML, ct=True),
    Case("yaml-opname-conv", "fixture/conv", yaml=OPNAME_CONV_YAML, ct=True),
    Case("yaml-opname-keras", "shared/keras_video", yaml=OPNAME_KERAS_YAML, ct=True),
    # seed configs
    Case("seed-threshold_512-keras", "shared/keras_video", yaml="seed:threshold_512.yaml", ct=True),
    Case("seed-threshold_512-conv", "fixture/conv", yaml="seed:threshold_512.yaml", ct=True),
    Case("seed-linear8-mnist", "shared/mnist", yaml="seed:linear8_skip_conv1_conv3.yaml", ct=True),
    Case("seed-linear8-conv", "fixture/conv", yaml="seed:linear8_skip_conv1_conv3.yaml", ct=True),
]
CASES_BY_ID = {c.id: c for c in CASES}
assert len(CASES_BY_ID) == len(CASES)

FLAG_KEYS = {
    "--mode": "mode", "--nbits": "nbits", "--granularity": "granularity", "--group-size": "group_size",
    "--channel-axis": "channel_axis", "--cluster-dim": "cluster_dim", "--lut-dtype": "lut_dtype",
    "--weight-threshold": "weight_threshold", "--minimum-deployment-target": None,
}
INT_KEYS = {"nbits", "group_size", "channel_axis", "cluster_dim", "weight_threshold"}


def case_config(case):
    """The effective config of a case: YAML (if any) with the flags overriding global_config."""
    if case.yaml:
        cfg = yaml.safe_load(yaml_text(case))
        cfg = {k: cfg.get(k) for k in ("global_config", "op_type_configs", "op_name_configs")}
    else:
        cfg = {"global_config": {"mode": "kmeans"}, "op_type_configs": {}, "op_name_configs": {}}
    g = dict(cfg.get("global_config") or {})
    i = 0
    flags = list(case.flags)
    while i < len(flags):
        f = flags[i]
        if f == "--per-channel-scale":
            g["enable_per_channel_scale"] = True
            i += 1
            continue
        k = FLAG_KEYS[f]
        v = flags[i + 1]
        if k is not None:
            g[k] = int(v) if k in INT_KEYS else v
        i += 2
    if not case.yaml or case.flags:
        if str(g.get("mode", "kmeans")).lower() != "unique":
            g.setdefault("nbits", 6)
    cfg["global_config"] = g if (g or not case.yaml) else cfg.get("global_config")
    return cfg


def yaml_text(case):
    if case.yaml.startswith("seed:"):
        p = CONFIGS_DIR / case.yaml[len("seed:"):]
        if not p.is_file():
            pytest.fail(f"{case.id}: seed config {p} does not exist")
        return p.read_text()
    return case.yaml


def fill_defaults(c):
    if c is None:
        return None
    d = dict(co.CONFIG_DEFAULTS)
    d.update({k: v for k, v in c.items() if v is not None or k in ("nbits",)})
    d["mode"] = str(d["mode"]).lower()
    d["granularity"] = str(d["granularity"]).lower()
    return d


def expected_config(cfg, rec):
    """(config dict | None, config_source) by the documented lookup order."""
    names = cfg.get("op_name_configs") or {}
    types = cfg.get("op_type_configs") or {}
    if rec["name"] in names:
        return fill_defaults(names[rec["name"]]), f"op_name_configs.{rec['name']}"
    per_consumer = []
    for c in rec["consumers"]:
        if c["op_name"] in names:
            per_consumer.append((fill_defaults(names[c["op_name"]]), f"op_name_configs.{c['op_name']}"))
        elif c["op_type"] in types:
            per_consumer.append((fill_defaults(types[c["op_type"]]), f"op_type_configs.{c['op_type']}"))
        else:
            per_consumer.append((fill_defaults(cfg.get("global_config")), "global_config"))
    if not per_consumer:
        return None, ""
    return per_consumer[0]


# --------------------------------------------------------------------------------------
# Running the CLI
# --------------------------------------------------------------------------------------


def palettize_bin(oracle):
    return oracle._bin("PALETTIZE_BIN")


def run_cli(oracle, args, what, expect_rc=0):
    cmd = [palettize_bin(oracle)] + [str(a) for a in args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: timed out after {SUBPROCESS_TIMEOUT}s: {' '.join(cmd)}")
    if expect_rc is not None and proc.returncode != expect_rc:
        pytest.fail(
            f"{what}: exit code {proc.returncode}, expected {expect_rc}: {' '.join(cmd)}\n"
            f"stdout:\n{proc.stdout.decode(errors='replace')[-3000:]}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')[-3000:]}",
            pytrace=False,
        )
    return proc


def compress_args(case, src, out, report, tmp):
    args = ["compress", src, "-o", out, "--report", report]
    if case.yaml:
        cfg_file = Path(tmp) / "config.yaml"
        cfg_file.write_text(yaml_text(case))
        args += ["--config", cfg_file]
    return args + case.flags


class Run:
    """One compress run of a case, and everything derived from it (computed once)."""

    def __init__(self, oracle, case, tmp):
        self.case = case
        self.tmp = Path(tmp)
        self.src = oracle.copy_model(case.model, self.tmp / "in")
        self.before = hash_tree(self.src)
        self.out = self.tmp / "out" / self.src.name
        self.out.parent.mkdir()
        self.report_path = self.tmp / "report.json"
        self.args = compress_args(case, self.src, self.out, self.report_path, self.tmp)
        self.proc = run_cli(oracle, self.args, f"{case.id}: compress")
        with open(self.report_path) as f:
            self.report = json.load(f)
        self.config = case_config(case)
        self.orig_idx, self.orig_dump = co.const_index(self.src)
        self.recs = {(w["program"], w["function"], w["name"]): w for w in self.orig_dump["weights"]}
        self.our_sse = {}  # weight key -> (sse, max_abs) recomputed from coremltools' decompression


@pytest.fixture(scope="session")
def runs(oracle, tmp_path_factory):
    cache = {}

    def get(case_id):
        if case_id not in cache:
            case = CASES_BY_ID[case_id]
            cache[case_id] = None
            tmp = tmp_path_factory.mktemp("compress_" + case_id)
            cache[case_id] = Run(oracle, case, tmp)
        if cache[case_id] is None:
            pytest.fail(f"{case_id}: the compress run failed earlier in this session", pytrace=False)
        return cache[case_id]

    return get


def wkey(w):
    return (w.get("program", ""), w.get("function"), w.get("name"))


def fmt(k):
    p, f, n = k
    return f"{p + '/' if p else ''}{f}/{n}"


def same_bits(a, b):
    return a is not None and b is not None and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def describe_diff(a, b):
    if a is None or b is None:
        return f"missing ({'first' if a is None else 'second'})"
    if a.dtype != b.dtype or a.shape != b.shape:
        return f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
    diff = np.flatnonzero(a.reshape(-1).view(np.uint8 if a.dtype.itemsize == 1 else f"u{a.dtype.itemsize}")
                          != b.reshape(-1).view(np.uint8 if b.dtype.itemsize == 1 else f"u{b.dtype.itemsize}"))
    i = int(diff[0])
    return f"{len(diff)} of {a.size} elements differ, first at flat {i}: {a.reshape(-1)[i]!r} vs {b.reshape(-1)[i]!r}"


def needs_ios18(cfg, luts):
    return (
        (cfg.get("granularity") == "per_grouped_channel" and (luts or 0) > 1)
        or (cfg.get("cluster_dim") or 1) > 1
        or bool(cfg.get("enable_per_channel_scale"))
        or cfg.get("lut_dtype") not in (None, "", "none")
    )


TARGET_ORDER = ["iOS15", "iOS16", "iOS17", "iOS18"]


# --------------------------------------------------------------------------------------
# 1+2: the config matrix
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_compress_case(oracle, runs, case_id):
    r = runs(case_id)
    case = r.case
    errors = []
    E = errors.append
    tag = f"{case.id} ({case.model}, {' '.join(case.flags) or 'no flags'}{', yaml' if case.yaml else ''})"

    after = hash_tree(r.src)
    assert after == r.before, f"{tag}: compress modified its INPUT package"
    assert r.out.is_dir(), f"{tag}: no output package {r.out}"
    leftovers = [p.name for p in r.out.parent.iterdir() if p.name != r.out.name]
    if leftovers:
        E(f"leftover files beside the output: {leftovers}")
    try:
        spec_out = co.read_spec(r.out)
        load_mlmodel(r.out)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{tag}: coremltools cannot load the output: {e!r}", pytrace=False)

    rep = r.report
    for k in ("input", "output", "targets", "weights", "totals"):
        if k not in rep:
            E(f"report lacks {k!r}")
    if errors:
        pytest.fail(f"{tag}:\n  " + "\n  ".join(errors), pytrace=False)
    if os.path.realpath(rep["output"]) != os.path.realpath(r.out):
        E(f"report output={rep['output']!r}, expected {str(r.out)!r}")
    if os.path.realpath(rep["input"]) != os.path.realpath(r.src):
        E(f"report input={rep['input']!r}, expected {str(r.src)!r}")

    # ---- decompressions of the output ----
    out_idx, out_dump = co.const_index(r.out)
    ct_idx, how = co.decompressed_index(r.out, r.tmp)
    dec = r.tmp / "dec" / r.src.name
    dec.parent.mkdir(exist_ok=True)
    dproc = subprocess.run([palettize_bin(oracle), "decompress", str(r.out), "-o", str(dec)], capture_output=True,
                           timeout=SUBPROCESS_TIMEOUT)
    our_dec_idx = None
    if dproc.returncode != 0:
        E(f"`palettize decompress` failed (exit {dproc.returncode}): {dproc.stderr.decode(errors='replace').strip()[:500]}")
    else:
        our_dec_idx, our_dec_dump = co.const_index(dec)
        for (p, f), ops in co.proto_op_index(dec).items():
            left = sorted({op.type for op in ops.values() if op.type.startswith("constexpr_lut_to_dense")})
            if left:
                E(f"`palettize decompress` output still has {left} in {p}/{f}")

    # Everything both decompressions produce (pre-existing constexpr weights included) agrees.
    if our_dec_idx is not None:
        for (p, f), d in ct_idx.by_fn.items():
            palettized_here = {w["name"] for w in rep["weights"]
                               if w.get("status") == "palettized" and wkey(w)[:2] == (p, f)}
            for n, (v, _c) in d["name"].items():
                if n in palettized_here:
                    continue  # compared per weight below
                ov = our_dec_idx.get(p, f, n)
                if ov is not None and not same_bits(v, ov):
                    E(f"{fmt((p, f, n))}: `palettize decompress` != coremltools {how}: {describe_diff(v, ov)}")

    proto_ops = co.proto_op_index(r.out)
    vars_, _ = co.pymil_vars(r.out)

    # ---- per weight ----
    rep_weights = {}
    for w in rep["weights"]:
        k = wkey(w)
        if k in rep_weights:
            E(f"{fmt(k)}: listed twice in the report")
        if w["reason"].startswith("already compressed ("):
            continue  # constexpr chains of the input: test_already_compressed_weights_pass_through
        rep_weights[k] = w
    for k in rep_weights:
        if k not in r.recs:
            E(f"{fmt(k)}: in the report but not a const of the input (coremltools)")

    program_needs = {}
    n_pal = 0
    sum_before = sum_after = 0
    for k, rec in sorted(r.recs.items()):
        name = fmt(k)
        w = rep_weights.get(k)
        exp_cfg, exp_src = expected_config(r.config, rec)
        thr = (exp_cfg or {}).get("weight_threshold", 2048)
        candidate = exp_cfg is not None and expected_candidate(rec, thr)
        orig = r.orig_idx.get(k[0], k[1], k[2])
        if candidate and w is None:
            E(f"{name}: a candidate ({exp_src}) but missing from the report")
        status = w.get("status") if w else None
        if w is not None:
            sum_before += w.get("bytes_before", 0) or 0
            sum_after += w.get("bytes_after", 0) or 0
            if w.get("dtype") != rec["dtype"] or list(w.get("shape", [])) != rec["shape"]:
                E(f"{name}: report dtype/shape {w.get('dtype')}{w.get('shape')} vs coremltools {rec['dtype']}{rec['shape']}")
            got_c = sorted((c.get("op_type"), c.get("op_name"), c.get("input")) for c in w.get("consumers", []))
            want_c = sorted((c["op_type"], c["op_name"], c["input"]) for c in rec["consumers"])
            if got_c != want_c:
                E(f"{name}: report consumers {got_c} vs coremltools {want_c}")
            if w.get("bytes_before") != rec["bytes"]:
                E(f"{name}: bytes_before={w.get('bytes_before')} expected {rec['bytes']}")
            if status not in ("palettized", "skipped"):
                E(f"{name}: status {status!r}")
        if status != "palettized":
            # untouched: bit-identical in the output, in both decompressions
            if w is not None and not (isinstance(w.get("reason"), str) and w["reason"].strip()):
                E(f"{name}: skipped with an empty reason")
            if w is not None and w.get("bytes_after") != w.get("bytes_before"):
                E(f"{name}: skipped but bytes_after={w.get('bytes_after')} != bytes_before={w.get('bytes_before')}")
            got = out_idx.get(*k)
            if not same_bits(got, orig):
                E(f"{name}: {'skipped' if w else 'not in report'} but the output const differs from the input: "
                  f"{describe_diff(orig, got)}")
            feeds_constexpr = any(c["op_type"].startswith("constexpr_") for c in rec["consumers"])
            if our_dec_idx is not None and not feeds_constexpr:
                got = our_dec_idx.get(*k)
                if not same_bits(got, orig):
                    E(f"{name}: not palettized, but `palettize decompress` changed it: {describe_diff(orig, got)}")
            continue

        # ---- palettized ----
        n_pal += 1
        if not candidate:
            E(f"{name}: palettized but not a candidate by coremltools' rule (threshold {thr}, "
              f"config {exp_src or 'none'})")
        if w.get("reason") != "":
            E(f"{name}: palettized with reason {w.get('reason')!r} (expected \"\")")
        cfg = w.get("config") or {}
        if exp_cfg is not None:
            for key in ("mode", "granularity", "cluster_dim", "enable_per_channel_scale", "weight_threshold"):
                if cfg.get(key) != exp_cfg.get(key):
                    E(f"{name}: report config.{key}={cfg.get(key)!r}, expected {exp_cfg.get(key)!r} ({exp_src})")
            if exp_cfg["mode"] != "unique" and cfg.get("nbits") != exp_cfg.get("nbits"):
                E(f"{name}: report config.nbits={cfg.get('nbits')!r}, expected {exp_cfg.get('nbits')!r} ({exp_src})")
            if exp_cfg["granularity"] == "per_grouped_channel" and cfg.get("group_size") != exp_cfg["group_size"]:
                E(f"{name}: report config.group_size={cfg.get('group_size')!r}, expected {exp_cfg['group_size']!r}")
            if exp_cfg.get("channel_axis") is not None and cfg.get("channel_axis") != exp_cfg["channel_axis"]:
                E(f"{name}: report config.channel_axis={cfg.get('channel_axis')!r}, expected {exp_cfg['channel_axis']!r}")
            if (cfg.get("lut_dtype") or None) != (exp_cfg.get("lut_dtype") or None):
                E(f"{name}: report config.lut_dtype={cfg.get('lut_dtype')!r}, expected {exp_cfg.get('lut_dtype')!r}")
            if w.get("config_source") != exp_src:
                E(f"{name}: config_source={w.get('config_source')!r}, expected {exp_src!r}")
        if not (isinstance(w.get("bytes_after"), int) and w["bytes_after"] < w.get("bytes_before", 0)):
            E(f"{name}: bytes_after={w.get('bytes_after')} not < bytes_before={w.get('bytes_before')}")

        # coremltools' decompression of our output
        ctv = co.decompressed_const(ct_idx, how, rec, orig, name, E)
        if ctv is None:
            continue
        if our_dec_idx is not None:
            ov = our_dec_idx.get(*k)
            if not same_bits(ov, ctv):
                E(f"{name}: `palettize decompress` != coremltools {how}: {describe_diff(ctv, ov)}")
        sse, mx = co.check_reported_error(w, ctv, orig, name, E)
        r.our_sse[k] = (sse, mx)
        if (sse == 0) != (w.get("snr_db") is None):
            E(f"{name}: snr_db={w.get('snr_db')!r} with sse={sse!r} (null exactly when lossless)")

        # the op chain
        info = co.lut_info(proto_ops[(k[0], k[1])], vars_[(k[0], k[1])], rec["output"])
        if "error" in info:
            E(f"{name}: {info['error']}")
            continue
        final_name = co.op_name(info["final_op"])
        if final_name != rec["name"]:
            E(f"{name}: the op producing the weight is named {final_name!r}, expected the const's name")
        nbits = w.get("nbits")
        if info["nbits"] != nbits:
            E(f"{name}: LUT has 2^{info['nbits']} entries, report nbits={nbits!r}")
        if cfg.get("mode") != "unique" and exp_cfg and nbits != exp_cfg.get("nbits"):
            E(f"{name}: report nbits={nbits!r}, config nbits {exp_cfg.get('nbits')!r}")
        if info["form"] == "ios18" and info["indices_dtype"] != f"uint{nbits}":
            E(f"{name}: indices dtype {info['indices_dtype']}, expected uint{nbits}")
        blocks, groups = co.blocks_of(info["lut_dense"], info["lut_shape"])
        luts = int(np.prod(groups))
        form = (w.get("per_channel_scale_form") or {}).get("emitted")
        folded = form == "folded"
        # A folded scale stores one table per k-means table and position off the channel axis.
        shape = [int(d) for d in rec["shape"]]
        positions = 1
        if folded:
            axes = [a for a in range(len(shape)) if int(groups[a]) == w.get("luts")
                    and all(int(groups[j]) == shape[j] for j in range(len(shape)) if j != a)]
            if not axes:
                E(f"{name}: folded LUT groups {list(groups)} are not {w.get('luts')} tables x one per position")
            else:
                positions = int(np.prod(shape)) // shape[axes[0]]
        if w.get("luts") * positions != luts:
            E(f"{name}: report luts={w.get('luts')!r} (x {positions} positions), LUT shape {info['lut_shape']} has {luts}")
        want_form = bool(cfg.get("enable_per_channel_scale")) and info["form"] == "ios18"
        if bool(form) != want_form:
            E(f"{name}: report per_channel_scale_form={w.get('per_channel_scale_form')!r}, expected one: {want_form}")
        if form:
            f = w["per_channel_scale_form"]
            emitted_bytes = f["folded_bytes"] if folded else f["wrapper_bytes"]
            if w.get("bytes_after") != emitted_bytes:
                E(f"{name}: bytes_after={w.get('bytes_after')} but the {form} form's bytes are {emitted_bytes}")
            if folded != (2 * f["folded_bytes"] <= 3 * f["wrapper_bytes"] and f["folded_bytes"] < w["bytes_before"]):
                E(f"{name}: emitted {form} with folded {f['folded_bytes']} B, wrapper {f['wrapper_bytes']} B")
        if exp_cfg and (exp_cfg.get("cluster_dim") or 1) != info["cluster_dim"]:
            E(f"{name}: LUT cluster_dim {info['cluster_dim']}, config {exp_cfg.get('cluster_dim')}")
        if bool(info["pcs"]) != (bool(cfg.get("enable_per_channel_scale")) and not folded):
            E(f"{name}: per-channel scale op present={info['pcs']}, config says {cfg.get('enable_per_channel_scale')}"
              f", form {form}")
        if bool(info["quantized_lut"]) != (bool(cfg.get("lut_dtype")) and not folded):
            E(f"{name}: quantized LUT present={info['quantized_lut']}, config lut_dtype={cfg.get('lut_dtype')!r}")
        for bi, b in enumerate(blocks):
            n = co.distinct_entries(b, info["cluster_dim"], info["vector_axis"] if info["vector_axis"] is not None else 0)
            if n > (1 << nbits):
                E(f"{name}: table {bi} decompresses to {n} distinct entries > 2^{nbits}")
                break
        if cfg.get("mode") == "unique":
            if sse != 0:
                E(f"{name}: unique mode is lossy: sse={sse!r}")
            u = max(co.distinct_entries(b, 1, 0) for b in co.blocks_of(orig, info["lut_shape"])[0])
            # The smallest width the output form holds: iOS16/17 tables have no 3-bit form, and
            # unique mode does not raise the target just to save a bit (docs/format.md section 6).
            target = {t["program"]: t["target"] for t in rep["targets"]}.get(k[0])
            widths = (1, 2, 3, 4, 6, 8) if target == "iOS18" else (1, 2, 4, 6, 8)
            want_bits = next((b for b in widths if u <= (1 << b)), None)
            if nbits != want_bits:
                E(f"{name}: unique mode, {u} distinct values per table -> nbits {want_bits}, report {nbits}")
        need = needs_ios18(exp_cfg or cfg, luts) or nbits == 3
        program_needs.setdefault(k[0], []).append((name, need, info["form"]))

    # ---- totals ----
    tot = rep["totals"]
    if tot.get("weights_palettized") != n_pal:
        E(f"totals.weights_palettized={tot.get('weights_palettized')} but {n_pal} weights palettized")
    n_skip = sum(1 for w in rep["weights"] if w.get("status") == "skipped")
    if tot.get("weights_skipped") != n_skip:
        E(f"totals.weights_skipped={tot.get('weights_skipped')} but {n_skip} weights skipped")
    if tot.get("bytes_before") != sum_before or tot.get("bytes_after") != sum_after:
        E(f"totals bytes {tot.get('bytes_before')}/{tot.get('bytes_after')} vs sums {sum_before}/{sum_after}")
    if sum_after and not (isinstance(tot.get("ratio"), (int, float))
                          and abs(tot["ratio"] - sum_before / sum_after) <= 1e-9 * sum_before / sum_after):
        E(f"totals.ratio={tot.get('ratio')!r}, expected {sum_before / sum_after!r}")
    if n_pal == 0:
        E("nothing was palettized (the matrix expects at least one weight per case)")

    # ---- targets ----
    in_progs = {p["path"]: p for p in r.orig_dump["model"]["programs"]}
    out_progs = {p["path"]: p for p in out_dump["model"]["programs"]}
    rep_targets = {t.get("program"): t.get("target") for t in rep.get("targets", [])}
    if set(rep_targets) != set(out_progs):
        E(f"report targets for programs {sorted(rep_targets)}, output has {sorted(out_progs)}")
    for path, p in out_progs.items():
        tgt = rep_targets.get(path)
        if tgt not in co.TARGET_SPEC:
            continue
        if p["specification_version"] != co.TARGET_SPEC[tgt]:
            E(f"program {path!r}: specificationVersion {p['specification_version']} but report target {tgt}")
        for f in p["functions"]:
            if f["opset"] != co.TARGET_OPSET[tgt]:
                E(f"program {path!r} function {f['name']}: opset {f['opset']} but report target {tgt}")
        in_t = co.SPEC_TARGET[in_progs[path]["specification_version"]]
        want = max(in_t, "iOS16", key=TARGET_ORDER.index)
        needs = program_needs.get(path, [])
        if any(n for _, n, _ in needs):
            want = "iOS18"
        if "--minimum-deployment-target" in case.flags:
            want = case.flags[case.flags.index("--minimum-deployment-target") + 1]
        if tgt != want:
            E(f"program {path!r}: target {tgt}, expected {want} (input {in_t}; needing iOS18: "
              f"{[x for x, n, _ in needs if n]})")
        for wname, _, form in needs:
            if (form == "ios18") != (tgt == "iOS18"):
                E(f"{wname}: {form} op form in a {tgt} program")
    max_ver = max(p["specification_version"] for p in out_progs.values())
    if spec_out.specificationVersion < max_ver:
        E(f"model specificationVersion {spec_out.specificationVersion} < a program's {max_ver}")

    if errors:
        pytest.fail(f"{tag}: {len(errors)} problem(s):\n  " + "\n  ".join(errors), pytrace=False)


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_report_skipped_fields(runs, case_id):
    """A skipped weight is stored as is: sse 0, max_abs_error 0, snr_db null ("null when lossless")."""
    r = runs(case_id)
    bad = []
    for w in r.report["weights"]:
        if w.get("status") != "skipped":
            continue
        if w.get("sse") != 0 or w.get("max_abs_error") != 0 or w.get("snr_db") is not None:
            bad.append(f"{fmt(wkey(w))}: sse={w.get('sse')!r} max_abs_error={w.get('max_abs_error')!r} "
                       f"snr_db={w.get('snr_db')!r}")
        if w.get("bytes_after") != w.get("bytes_before"):
            bad.append(f"{fmt(wkey(w))}: bytes_after={w.get('bytes_after')} != bytes_before={w.get('bytes_before')}")
    assert not bad, (f"{case_id}: {len(bad)} skipped weight(s) without the lossless values "
                     f"(expected sse 0, max_abs_error 0, snr_db null):\n  " + "\n  ".join(bad))


# --------------------------------------------------------------------------------------
# 3: k-means SSE against coremltools' palettize_weights
# --------------------------------------------------------------------------------------

SSE_RATIOS = []


@pytest.mark.parametrize("case_id", [c.id for c in CASES if c.ct])
def test_kmeans_sse_vs_coremltools(runs, case_id, tmp_path):
    r = runs(case_id)
    case = r.case
    tag = f"{case.id} ({case.model})"
    if not r.our_sse:
        # test_compress_case did not run (or failed before recomputing): recompute here.
        ct_idx, _ = co.decompressed_index(r.out, r.tmp)
        for w in r.report["weights"]:
            if w.get("status") == "palettized":
                k = wkey(w)
                _, v = ct_idx.find(r.recs[k])
                if v is not None and v.shape == r.orig_idx.get(*k).shape:
                    r.our_sse[k] = co.sse_and_max(v, r.orig_idx.get(*k))
    targets = {t["program"]: t["target"] for t in r.report["targets"]}
    assert list(targets) == [""], f"{tag}: coremltools comparison needs a single ML Program"
    src = r.src
    in_ver = r.orig_dump["model"]["specification_version"]
    if co.TARGET_SPEC[targets[""]] > in_ver:
        src = co.raise_target_copy(r.src, tmp_path / "raised.mlpackage", targets[""])
    ct_out = tmp_path / "ct.mlpackage"
    try:
        co.ct_palettize(src, r.config, ct_out)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{tag}: coremltools palettize_weights failed on the raised input ({targets['']}): {e!r}",
                    pytrace=False)
    # (minus LUT ops already in the input: the compressed_* fixtures)
    ct_names = co.ct_palettized_names(ct_out)[("", "main")] - co.ct_palettized_names(r.src)[("", "main")]
    ct_dec, _ = co.decompressed_index(ct_out, tmp_path)

    errors = []
    ours = {wkey(w): w for w in r.report["weights"] if w.get("status") == "palettized"}
    ours_names = {k[2] for k in ours}
    if ours_names != ct_names:
        errors.append(f"palettized sets differ: only ours={sorted(ours_names - ct_names)} "
                      f"only coremltools={sorted(ct_names - ours_names)}")
    lines = []
    for k, w in sorted(ours.items()):
        if k[2] not in ct_names or (w.get("config") or {}).get("mode") != "kmeans":
            continue
        rec = r.recs[k]
        orig = r.orig_idx.get(*k)
        _, ctv = ct_dec.find(rec, (k[2] + "_palettized_pcs", k[2] + "_palettized"))
        if ctv is None or ctv.shape != orig.shape:
            errors.append(f"{fmt(k)}: coremltools' palettized value not found / wrong shape")
            continue
        ct_sse, _ = co.sse_and_max(ctv, orig)
        if k not in r.our_sse:
            errors.append(f"{fmt(k)}: our sse unavailable")
            continue
        our_sse = r.our_sse[k][0]
        cfg = w["config"]
        cd = cfg.get("cluster_dim") or 1
        ratio = our_sse / ct_sse if ct_sse > 0 else (1.0 if our_sse == 0 else float("inf"))
        desc = (f"{fmt(k)} {rec['dtype']}{rec['shape']} nbits={w.get('nbits')} {cfg.get('granularity')}"
                f"{'/' + str(cfg.get('group_size')) if cfg.get('granularity') == 'per_grouped_channel' else ''}"
                f" cd={cd} pcs={cfg.get('enable_per_channel_scale')}")
        lines.append(f"  {desc}: ours={our_sse:.6g} coremltools={ct_sse:.6g} ratio={ratio:.6f}")
        if cd > 1:
            SSE_RATIOS.append((case.id, desc, ratio))
            if not our_sse <= ct_sse * (1 + 1e-6) + 1e-12:
                errors.append(f"{desc}: vector k-means sse {our_sse!r} > coremltools {ct_sse!r} (ratio {ratio:.6f})")
        else:
            if not our_sse <= ct_sse * (1 + 1e-6) + 1e-12:
                errors.append(f"{desc}: k-means sse {our_sse!r} > coremltools {ct_sse!r} (ratio {ratio:.9f})")
    print(f"\n[sse vs coremltools] {tag}\n" + "\n".join(lines))
    if errors:
        pytest.fail(f"{tag}: {len(errors)} problem(s):\n  " + "\n  ".join(errors), pytrace=False)


# --------------------------------------------------------------------------------------
# 4: determinism
# --------------------------------------------------------------------------------------


def _strip_times(x):
    if isinstance(x, dict):
        return {k: _strip_times(v) for k, v in x.items() if k not in SKIP_KEYS}
    if isinstance(x, list):
        return [_strip_times(v) for v in x]
    return x


@pytest.mark.parametrize("case_id", ["default-keras", "pcs-g8-kmeans4-conv", "cd4-kmeans4-conv",
                                     "int8lut-kmeans4-matmul", "default-pipeline", "yaml-opname-keras"])
def test_deterministic(oracle, case_id, tmp_path):
    case = CASES_BY_ID[case_id]
    src = oracle.copy_model(case.model, tmp_path / "in")
    out = tmp_path / "out" / src.name
    out.parent.mkdir()
    report = tmp_path / "report.json"
    args = compress_args(case, src, out, report, tmp_path) + ["--force"]
    run_cli(oracle, args, f"{case_id}: compress (1st)")
    h1, r1 = hash_tree(out), json.loads(report.read_text())
    run_cli(oracle, args, f"{case_id}: compress (2nd, --force)")
    h2, r2 = hash_tree(out), json.loads(report.read_text())
    diff = sorted(k for k in set(h1) | set(h2) if h1.get(k, "?") != h2.get(k, "?"))
    assert not diff, f"{case_id}: two identical runs wrote different files: {diff}"
    assert _strip_times(r1) == _strip_times(r2), f"{case_id}: reports differ beyond seconds/wall_seconds"


# --------------------------------------------------------------------------------------
# 5: --dry-run
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", ["default-keras", "yaml-opname-conv", "default-multifunction"])
def test_dry_run(oracle, runs, case_id, tmp_path):
    case = CASES_BY_ID[case_id]
    full = runs(case_id).report
    src = oracle.copy_model(case.model, tmp_path / "in")
    before = hash_tree(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / src.name
    report = out_dir / "report.json"
    args = compress_args(case, src, out, report, tmp_path) + ["--dry-run"]
    proc = run_cli(oracle, args, f"{case_id}: compress --dry-run")
    assert list(out_dir.iterdir()) == [], f"{case_id}: --dry-run wrote {sorted(p.name for p in out_dir.iterdir())}"
    assert hash_tree(src) == before, f"{case_id}: --dry-run modified the input"
    lines = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.strip()]
    problems = []
    used = set()
    for w in full["weights"]:
        prefix = fmt(wkey(w)) + ":"
        hits = [i for i, ln in enumerate(lines) if ln.startswith(prefix)]
        if len(hits) != 1:
            problems.append(f"{len(hits)} lines start with {prefix!r} (expected 1)")
        else:
            ln = lines[hits[0]]
            used.add(hits[0])
            if (w["status"] == "skipped") != (": skip" in ln):
                problems.append(f"{prefix} line {ln!r} disagrees with the real run's status {w['status']}")
    other = [ln for i, ln in enumerate(lines) if i not in used]
    if other:
        print(f"\n[dry-run] {case_id}: lines besides the per-weight lines: {other}")
    assert not problems, f"{case_id}: --dry-run:\n  " + "\n  ".join(problems)
    assert len(other) <= 1 + 2 * len(full["targets"]), f"{case_id}: --dry-run prints extra lines: {other}"


# --------------------------------------------------------------------------------------
# 6: refusals
# --------------------------------------------------------------------------------------


def _refusal(oracle, tmp_path, model, extra, expect_rc, out_exists=False, config_text=None):
    src = oracle.copy_model(model, tmp_path / "in")
    before = hash_tree(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.mlpackage"
    if out_exists:
        out.mkdir()
        (out / "marker.txt").write_text("keep me")
    args = ["compress", src, "-o", out, "--report", out_dir / "report.json"]
    cfg = None
    if config_text is not None:
        cfg = tmp_path / "bad.yaml"
        cfg.write_text(config_text)
        args += ["--config", cfg]
    args += extra
    proc = run_cli(oracle, args, f"{model}: compress {' '.join(map(str, extra))}", expect_rc=expect_rc)
    err = proc.stderr.decode(errors="replace")
    assert len(err.strip().splitlines()) == 1, f"{model} {extra}: expected one stderr line, got:\n{err}"
    assert hash_tree(src) == before, f"{model} {extra}: the input changed"
    left = sorted(p.name for p in out_dir.iterdir())
    if out_exists:
        assert left == ["result.mlpackage"], f"{model} {extra}: files written beside the output: {left}"
        assert hash_tree(out) == {"marker.txt": hash_tree(out)["marker.txt"]} and \
            (out / "marker.txt").read_text() == "keep me", f"{model} {extra}: the existing OUTPUT was changed"
    else:
        assert left == [], f"{model} {extra}: wrote {left}"
    return err.strip(), cfg


def test_refuse_existing_output(oracle, tmp_path):
    err, _ = _refusal(oracle, tmp_path, "fixture/linear_fp32", [], 1, out_exists=True)
    assert "already exists" in err, f"existing OUTPUT: message {err!r} lacks 'already exists'"


def test_refuse_grouped_below_ios18(oracle, tmp_path):
    err, _ = _refusal(oracle, tmp_path, "shared/mnist",
                      ["--minimum-deployment-target", "iOS16"] + G + ["--group-size", "16"], 1)
    assert "model_Dense1_weight_to_fp16" in err and "iOS18" in err, (
        f"iOS16 + per_grouped_channel on mnist: message {err!r} must name model_Dense1_weight_to_fp16 and iOS18")


def test_refuse_nbits_5(oracle, tmp_path):
    err, _ = _refusal(oracle, tmp_path, "fixture/linear_fp32", ["--nbits", "5"], 1)
    assert "5" in err and "nbits" in err.lower(), f"--nbits 5: message {err!r}"


@pytest.mark.parametrize("where", ["top", "global_config"])
def test_refuse_unknown_yaml_key(oracle, tmp_path, where):
    if where == "top":
        text = "config_type: OpPalettizerConfig\nglobal_config:\n  nbits: 4\nbogus_key: 1\n"
        line, key = 4, "bogus_key"
    else:
        text = "config_type: OpPalettizerConfig\nglobal_config:\n  mode: kmeans\n  nbitz: 4\n"
        line, key = 4, "nbitz"
    err, cfg = _refusal(oracle, tmp_path, "fixture/linear_fp32", [], 1, config_text=text)
    assert key in err, f"unknown key {key} ({where}): message {err!r} does not name the key"
    assert f"{cfg}:{line}" in err or f"{cfg.name}:{line}" in err, (
        f"unknown key {key} ({where}): message {err!r} does not name {cfg.name}:{line}")


@pytest.mark.parametrize("case_id", ["default-mnist", "g16-kmeans4-mnist", "pcs-kmeans4-pipeline",
                                     "default-multifunction", "int8lut-pcs-g8-kmeans4-conv"])
def test_no_dead_blobs(runs, case_id):
    """weight.bin is written fresh: every blob in it is referenced, each exactly once per offset."""
    import struct
    from coremltools.proto import Model_pb2
    r = runs(case_id)
    spec = Model_pb2.Model()
    spec.ParseFromString((Path(r.out) / "Data/com.apple.CoreML/model.mlmodel").read_bytes())
    import re
    from google.protobuf import text_format
    referenced = {}
    for name, off in re.findall(r'blobFileValue \{\s*fileName: "([^"]+)"\s*offset: (\d+)',
                                text_format.MessageToString(spec)):
        referenced.setdefault(name, set()).add(int(off))
    assert referenced, f"{case_id}: no blob references found"
    for name, offsets in referenced.items():
        path = Path(r.out) / "Data/com.apple.CoreML" / name.replace("@model_path/", "")
        data = path.read_bytes()
        count, version = struct.unpack_from("<II", data, 0)
        # Walk the records the way the format lays them out.
        walked, off = [], 64
        while off < len(data):
            sentinel, _dtype, size, data_off = struct.unpack_from("<IIQQ", data, off)
            assert sentinel == 0xDEADBEEF, f"{case_id}: {name}: bad sentinel at {off}"
            walked.append(off)
            off = data_off + size
            off += (-off) % 64
        assert count == len(walked), f"{case_id}: {name}: header count {count}, {len(walked)} records"
        assert set(walked) == offsets, (f"{case_id}: {name}: unreferenced blobs "
                                        f"{sorted(set(walked) - offsets)}, missing {sorted(offsets - set(walked))}")


def _blob_offsets_by_function(out):
    """function -> {weight name: sorted blob offsets its ops read}, for consts and constexpr ops
    (iOS18 binds a constexpr's tables as values in its inputs)."""
    from coremltools.proto import Model_pb2
    spec = Model_pb2.Model()
    spec.ParseFromString((Path(out) / "Data/com.apple.CoreML/model.mlmodel").read_bytes())
    res = {}
    for fname, f in spec.mlProgram.functions.items():
        by_name = res.setdefault(fname, {})
        for block in f.block_specializations.values():
            for op in block.operations:
                offsets = [a.blobFileValue.offset for a in op.attributes.values() if a.HasField("blobFileValue")]
                offsets += [arg.value.blobFileValue.offset for binding in op.inputs.values()
                            for arg in binding.arguments if arg.value.HasField("blobFileValue")]
                if offsets:
                    by_name.setdefault(op.outputs[0].name, []).extend(offsets)
    return {f: {n: sorted(o) for n, o in ops.items()} for f, ops in res.items()}


def test_multifunction_shared_const_stays_shared(runs):
    """The fixture's two functions share one trunk weight blob (coremltools deduplicates it): it is
    palettized once, both functions' constexpr ops read the same new blobs, and the copy is
    reported with the first's numbers and shared_with."""
    r = runs("default-multifunction")
    before = _blob_offsets_by_function(r.src)
    assert before["main"]["trunk_weight_0"] == before["classify"]["trunk_weight_0"], "fixture no longer shares"
    after = _blob_offsets_by_function(r.out)
    main, classify = after["main"]["trunk_weight_0"], after["classify"]["trunk_weight_0"]
    assert len(main) == 2 and main == classify, f"trunk blobs main {main} classify {classify}"
    assert after["main"]["head_a_weight_0"] != classify
    weights = {(w["function"], w["name"]): w for w in r.report["weights"]}
    first, copy = weights[("classify", "trunk_weight_0")], weights[("main", "trunk_weight_0")]
    assert first["status"] == copy["status"] == "palettized"
    assert first["shared_with"] is None and copy["shared_with"] == "classify/trunk_weight_0"
    for key in ("sse", "max_abs_error", "snr_db", "nbits", "luts", "bytes_after"):
        assert first[key] == copy[key], key
    # coremltools decompresses both functions to the same trunk weight.
    idx, _ = co.decompressed_index(r.out, r.tmp)
    values = [idx.get("", fn, "trunk_weight_0") for fn in ("main", "classify")]
    assert values[0] is not None and values[1] is not None, "trunk_weight_0 not found after decompression"
    assert values[0].shape == (96, 64) and np.array_equal(values[0], values[1])


def test_largest_weights_are_palettized_first(runs):
    """Weights are worked on (and their blobs written) largest first: in the multifunction fixture
    main's head_a (40x96) comes after classify's head_b (24x96) in model order but is written
    before it; the shared trunk (96x64) is first."""
    r = runs("default-multifunction")
    after = _blob_offsets_by_function(r.out)
    trunk, head_a, head_b = (after["classify"]["trunk_weight_0"], after["main"]["head_a_weight_0"],
                             after["classify"]["head_b_weight_0"])
    assert max(trunk) < min(head_a) and max(head_a) < min(head_b), (trunk, head_a, head_b)


@pytest.mark.parametrize("case_id,chains", [
    ("default-compressed_ios16", {"l1_weight_0_to_fp16_quantized": "constexpr_affine_dequantize",
                                  "l2_weight_0_to_fp16_palettized": "constexpr_lut_to_dense"}),
    ("default-compressed_ios18", {"l1_weight_0_to_fp16_quantized": "constexpr_blockwise_shift_scale",
                                  "l2_weight_0_to_fp16_palettized": "constexpr_lut_to_dense"}),
])
def test_already_compressed_weights_pass_through(runs, case_id, chains):
    """Weights the input already holds as constexpr chains are reported as skipped, with the chain,
    and come out of coremltools' decompression exactly as they went in."""
    r = runs(case_id)
    reported = {w["name"]: w for w in r.report["weights"]}
    before, _ = co.decompressed_index(r.src, r.tmp)
    after, _ = co.decompressed_index(r.out, r.tmp)
    for name, chain in chains.items():
        w = reported[name]
        assert w["status"] == "skipped" and w["reason"] == f"already compressed ({chain}): left as it is", w
        assert w["consumers"] and w["consumers"][0]["op_type"] == "linear", w
        a, b = before.get("", "main", name), after.get("", "main", name)
        assert a is not None and b is not None, f"{case_id}: {name} missing after decompression"
        assert list(w["shape"]) == list(a.shape)
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{case_id}: {name} changed"


def test_skip_when_palettized_form_is_larger(oracle, tmp_path):
    """activity_fp16's [16, 8] weight has 128 distinct values: 8-bit indices plus a 256-entry
    table would take 648 bytes for a 256-byte weight, so it stays dense, with the reason."""
    src = oracle.copy_model("shared/activity_fp16", tmp_path / "in")
    out, report = tmp_path / "out.mlpackage", tmp_path / "r.json"
    r = subprocess.run([palettize_bin(oracle), "compress", str(src), "-o", str(out), "--mode", "unique",
                        "--weight-threshold", "100", "--report", str(report)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    w = {w["name"]: w for w in json.loads(report.read_text())["weights"]}["linear_0_weight_0_to_fp16"]
    assert w["status"] == "skipped"
    assert w["reason"] == "palettized it would take 648 bytes, not less than its 256"
    assert w["bytes_after"] == w["bytes_before"] == 256


# --------------------------------------------------------------------------------------
# Summary of vector k-means ratios (pytest -s)
# --------------------------------------------------------------------------------------


def teardown_module(module):
    if SSE_RATIOS:
        print("\n[vector k-means sse ratio ours/coremltools]")
        for cid, desc, ratio in SSE_RATIOS:
            print(f"  {cid}: {desc}: {ratio:.4f}")


@pytest.mark.parametrize("model,flags", [
    ("shared/mnist", ["--nbits", "4", "--granularity", "per_grouped_channel", "--group-size", "16"]),
    ("shared/keras_video", ["--nbits", "3", "--per-channel-scale"]),
    ("fixture/linear_fp32", ["--nbits", "2", "--cluster-dim", "2"]),
])
def test_same_output_for_any_thread_count(oracle, tmp_path, model, flags):
    """Groups and weights run in parallel, but one thread and all threads write the same bytes."""
    src = oracle.copy_model(model, tmp_path / "in")
    trees = []
    for threads in ("1", "2", "0"):
        out = tmp_path / f"out{threads}.mlpackage"
        r = subprocess.run([palettize_bin(oracle), "compress", str(src), "-o", str(out), "-q",
                            "--threads", threads] + flags, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1] == trees[2], f"{model} {flags}: output depends on the thread count"


# --------------------------------------------------------------------------------------
# Per-channel scale: the wrapper form and the folded form (issue 18 item 5)
# --------------------------------------------------------------------------------------

PCS_FORM_CASES = [
    ("fixture/conv", ["--per-channel-scale", "--nbits", "4"]),
    ("shared/mnist", ["--per-channel-scale", "--nbits", "4"]),
    ("fixture/linear_fp32", ["--per-channel-scale"]),
    ("fixture/conv", ["--lut-dtype", "int8", "--per-channel-scale", "--nbits", "4"] + G + ["--group-size", "8"]),
]


@pytest.mark.parametrize("model,flags", PCS_FORM_CASES, ids=lambda x: x if isinstance(x, str) else "-".join(x))
def test_per_channel_scale_forms_decode_alike(oracle, tmp_path, model, flags):
    """--per-channel-scale-form wrapper and folded: coremltools decompresses both outputs to the same
    bits for every weight, which are what each report's sse / max_abs_error say; the op chains are
    the forms the reports name, and the reports agree on both forms' bytes."""
    src = oracle.copy_model(model, tmp_path / "in")
    orig_idx, orig_dump = co.const_index(src)
    recs = {(w["program"], w["function"], w["name"]): w for w in orig_dump["weights"]}
    outs = {}
    for form in ("wrapper", "folded"):
        out = tmp_path / form / src.name
        out.parent.mkdir()
        report = tmp_path / f"{form}.json"
        run_cli(oracle, ["compress", src, "-o", out, "--report", report, "--per-channel-scale-form", form] + flags,
                f"{model} {form}")
        with open(report) as f:
            rep = json.load(f)
        (tmp_path / f"{form}-ct").mkdir()
        ct_idx, how = co.decompressed_index(out, tmp_path / f"{form}-ct")
        vars_, _ = co.pymil_vars(out)
        outs[form] = (rep, ct_idx, how, co.proto_op_index(out), vars_)

    errors = []
    E = errors.append
    reports = {form: {wkey(w): w for w in o[0]["weights"] if w.get("status") == "palettized"} for form, o in outs.items()}
    if set(reports["wrapper"]) != set(reports["folded"]):
        E("the two forms palettized different weights")
    if not reports["wrapper"]:
        E("nothing palettized")
    folded_count = 0
    for k in sorted(reports["wrapper"]):
        rec, orig = recs[k], orig_idx.get(*k)
        values = {}
        for form, (rep, ct_idx, how, proto_ops, vars_) in outs.items():
            w = reports[form].get(k)
            if w is None:
                continue
            label = f"{form} {fmt(k)}"
            ctv = co.decompressed_const(ct_idx, how, rec, orig, label, E)
            if ctv is None:
                continue
            values[form] = ctv
            co.check_reported_error(w, ctv, orig, label, E)
            f = w.get("per_channel_scale_form") or {}
            info = co.lut_info(proto_ops[(k[0], k[1])], vars_[(k[0], k[1])], rec["output"])
            if "error" in info:
                E(f"{label}: {info['error']}")
                continue
            too_big = form == "folded" and f.get("folded_bytes", 0) >= w.get("bytes_before", 0)
            if too_big and f.get("note") != "folded form not smaller than the dense weight":
                E(f"{label}: folded form of {f.get('folded_bytes')} B >= dense, but note {f.get('note')!r}")
            if f.get("emitted") != (form if not too_big else "wrapper"):
                E(f"{label}: report per_channel_scale_form={f!r}, asked for {form}")
            if info["pcs"] != (f.get("emitted") == "wrapper"):
                E(f"{label}: constexpr_blockwise_shift_scale around the LUT op: {info['pcs']}, report {f!r}")
            if f.get("emitted") == "folded":
                folded_count += 1
                if info["quantized_lut"]:
                    E(f"{label}: folded form still has a quantized LUT")
            emitted = f.get("folded_bytes") if f.get("emitted") == "folded" else f.get("wrapper_bytes")
            if w.get("bytes_after") != emitted:
                E(f"{label}: bytes_after={w.get('bytes_after')}, the {f.get('emitted')} form's bytes {emitted}")
        if len(values) == 2 and not same_bits(values["wrapper"], values["folded"]):
            E(f"{fmt(k)}: wrapper and folded forms decompress differently: "
              f"{describe_diff(values['wrapper'], values['folded'])}")
        fw = (reports["wrapper"][k].get("per_channel_scale_form") or {})
        ff = (reports["folded"].get(k, {}).get("per_channel_scale_form") or {})
        if (fw.get("wrapper_bytes"), fw.get("folded_bytes")) != (ff.get("wrapper_bytes"), ff.get("folded_bytes")):
            E(f"{fmt(k)}: the reports disagree on the forms' bytes: {fw} vs {ff}")
    if folded_count == 0 and any((w.get("per_channel_scale_form") or {}).get("folded_bytes", 0) < w["bytes_before"]
                                 for w in reports["folded"].values()):
        E("no weight was emitted folded")
    assert not errors, f"{model} {' '.join(flags)}:\n  " + "\n  ".join(errors[:30])
