"""Models in the wild, checked with coremltools: pipelines that hold an ML Program beside other
model types, packages whose Manifest.json carries extra items, weights stored as immediate values.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize FIXTURES_DIR=build/fixtures \\
        .venv/bin/python -m pytest test/oracle/test_realworld_oracle.py

Fixtures (scripts/oracle/make_fixtures.py):
  pipeline_nms         `pipeline`: iOS17 fp16 ML Program detector + NonMaximumSuppression model
  pipeline_classifier  `pipelineClassifier`: iOS16 fp32 ML Program + Normalizer + GLMClassifier
  pipeline_regressor   `pipelineRegressor`: iOS15 fp16 ML Program + GLMRegressor
  manifest_overlays    ML Program whose Manifest.json lists Xcode's Metadata.json /
                       FeatureDescriptions.json overlays and a non-standard author's items,
                       entries in an order coremltools never writes
  immediate_fp16/32    (existing) the big weight is an immediate value, not a blob

For each pipeline x config (PIPELINE_CASES) `palettize compress` runs once per session and:
  * test_pipeline_compress: exit 0, the input is untouched, coremltools loads the output, every
    candidate weight of every ML Program is palettized (and nothing else), skipped weights are
    bit-identical, and the report's sse / max_abs_error equal a float64 recomputation from
    coremltools' decompression (the WeightDecompressor pass on each pymil program);
  * test_pipeline_other_models_kept: every non-ML-Program stage is byte-identical (serialized
    sub-message), the stage list and every description are unchanged;
  * test_pipeline_spec_versions: the pipeline's specificationVersion >= every inner model's and
    >= the input's; each ML Program has the report's target (iOS18 -> version 9, opset CoreML8);
  * test_pipeline_decompress: `palettize decompress` of the output gives dense consts bit-equal
    to coremltools' decompression, keeps the other stages, and loads in coremltools.
"""

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import compress_oracle as co
import npcompat
import make_fixtures
from oracle_conftest import SUBPROCESS_TIMEOUT, expected_candidate, hash_tree, load_mlmodel, read_manifest

PIPELINE_KINDS = ("pipeline", "pipelineClassifier", "pipelineRegressor")

GROUPED_YAML = """\
config_type: OpPalettizerConfig
global_config:
  mode: kmeans
  nbits: 4
  granularity: per_grouped_channel
  group_size: 8
"""


@dataclass
class Case:
    id: str
    model: str
    flags: list = field(default_factory=list)
    yaml: str = None
    target: str = None  # the ML Programs' expected target after compress
    grouped: bool = False

    def __str__(self):
        return self.id


PIPELINE_CASES = [
    Case("nbits4-pipeline_nms", "fixture/pipeline_nms", ["--nbits", "4"], target="iOS17"),
    Case("grouped-pipeline_nms", "fixture/pipeline_nms", yaml=GROUPED_YAML, target="iOS18", grouped=True),
    Case("nbits4-pipeline_classifier", "fixture/pipeline_classifier", ["--nbits", "4"], target="iOS16"),
    Case("grouped-pipeline_classifier", "fixture/pipeline_classifier", yaml=GROUPED_YAML, target="iOS18",
         grouped=True),
    # iOS15 (CoreML5 has no constexpr ops) is raised to iOS16.
    Case("nbits4-pipeline_regressor", "fixture/pipeline_regressor", ["--nbits", "4"], target="iOS16"),
    Case("grouped-pipeline_regressor", "fixture/pipeline_regressor", yaml=GROUPED_YAML, target="iOS18",
         grouped=True),
]
CASES_BY_ID = {c.id: c for c in PIPELINE_CASES}

# The stage types each pipeline fixture is built with (guards against coremltools drift).
STAGES = {
    "fixture/pipeline_nms": ("pipeline", ["mlProgram", "nonMaximumSuppression"]),
    "fixture/pipeline_classifier": ("pipelineClassifier", ["mlProgram", "normalizer", "glmClassifier"]),
    "fixture/pipeline_regressor": ("pipelineRegressor", ["mlProgram", "glmRegressor"]),
}


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def palettize(oracle, args, what, expect_rc=0):
    cmd = [oracle._bin("PALETTIZE_BIN")] + [str(a) for a in args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: timed out after {SUBPROCESS_TIMEOUT}s: {' '.join(cmd)}")
    if proc.returncode != expect_rc:
        pytest.fail(
            f"{what}: exit code {proc.returncode}, expected {expect_rc}: {' '.join(cmd)}\n"
            f"stdout:\n{proc.stdout.decode(errors='replace')[-3000:]}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')[-3000:]}",
            pytrace=False,
        )
    return proc


def stages(spec):
    """The inner models of a pipeline spec (a repeated field), or None for other models."""
    kind = spec.WhichOneof("Type")
    if kind == "pipeline":
        return spec.pipeline.models
    if kind in ("pipelineClassifier", "pipelineRegressor"):
        return getattr(spec, kind).pipeline.models
    return None


def ser(msg):
    return msg.SerializeToString(deterministic=True)


def wkey(w):
    return (w["program"], w["function"], w["name"])


def fmt(k):
    return f"{k[0] + '/' if k[0] else ''}{k[1]}/{k[2]}"


def same_bits(a, b):
    return a is not None and b is not None and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_weights_against_coremltools(src, out, report, threshold, tmp, errors):
    """Every candidate (by coremltools' reading of src) is palettized, everything else is kept
    bit for bit, and the report's numbers equal a recomputation from coremltools' decompression.
    Returns (coremltools' decompression index, how)."""
    E = errors.append
    orig_idx, orig_dump = co.const_index(src)
    out_idx, _ = co.const_index(out)
    ct_idx, how = co.decompressed_index(out, tmp)
    recs = {wkey(w): w for w in orig_dump["weights"]}
    reported = {}
    for w in report["weights"]:
        k = wkey(w)
        if k in reported:
            E(f"{fmt(k)}: listed twice in the report")
        reported[k] = w
    if set(reported) != set(recs):
        E(f"report weights != coremltools' consts: only report {sorted(map(fmt, set(reported) - set(recs)))}, "
          f"only coremltools {sorted(map(fmt, set(recs) - set(reported)))}")
    n_pal = 0
    for k, rec in sorted(recs.items()):
        w = reported.get(k)
        if w is None:
            continue
        orig = orig_idx.get(*k)
        cand = expected_candidate(rec, threshold)
        if cand != (w["status"] == "palettized"):
            E(f"{fmt(k)}: status {w['status']} ({w.get('reason')!r}) but candidate={cand} by coremltools' rule")
        if w["status"] != "palettized":
            if not same_bits(out_idx.get(*k), orig):
                E(f"{fmt(k)}: skipped but the output const differs from the input")
            if w.get("sse") != 0 or w.get("max_abs_error") != 0:
                E(f"{fmt(k)}: skipped with sse={w.get('sse')!r} max_abs_error={w.get('max_abs_error')!r}")
            continue
        n_pal += 1
        ctv = co.decompressed_const(ct_idx, how, rec, orig, fmt(k), E)
        if ctv is None:
            continue
        co.check_reported_error(w, ctv, orig, fmt(k), E)
        if npcompat.distinct_count(ctv) > (1 << w["nbits"]) * (w.get("luts") or 1):
            E(f"{fmt(k)}: {npcompat.distinct_count(ctv)} distinct values > {w.get('luts')} tables of 2^{w['nbits']}")
    if n_pal == 0:
        E("nothing was palettized")
    if report["totals"].get("weights_palettized") != n_pal:
        E(f"totals.weights_palettized={report['totals'].get('weights_palettized')}, {n_pal} palettized")
    return ct_idx, how


def check_decompress(src, dec, ct_idx, how, report, errors):
    """`palettize decompress` (dec) of a compressed package: every const of the original input src
    is a dense const again; a palettized one is bit-equal to coremltools' decompression (ct_idx),
    any other is bit-equal to the original. (coremltools' pymil loader also leaves synthetic consts
    for the constexpr ops' parameters, "<name>_lut_0" etc., and decompress_weights' pass pipeline
    renames some small consts: those are not compared.)"""
    E = errors.append
    for (p, f), ops in co.proto_op_index(dec).items():
        left = sorted({op.type for op in ops.values() if op.type.startswith("constexpr_")})
        if left:
            E(f"`palettize decompress` output still has {left} in {p}/{f}")
    orig_idx, orig_dump = co.const_index(src)
    dec_idx, _ = co.const_index(dec)
    want = {wkey(w) for w in orig_dump["weights"]}
    got = {(p, f, n) for (p, f), d in dec_idx.by_fn.items() for n in d["name"]}
    if got != want:
        E(f"`palettize decompress` consts differ from the original's: only decompress "
          f"{sorted(map(fmt, got - want))}, only original {sorted(map(fmt, want - got))}")
    palettized = {wkey(w) for w in report["weights"] if w["status"] == "palettized"}
    if not palettized <= want:
        E(f"palettized weights that are not consts of the input: {sorted(map(fmt, palettized - want))}")
    for k in sorted(want):
        ov = dec_idx.get(*k)
        if k in palettized:
            v = ct_idx.get(*k)
            if v is None:
                E(f"{fmt(k)}: palettized but not in coremltools' decompression ({how})")
            elif not same_bits(v, ov):
                E(f"{fmt(k)}: `palettize decompress` "
                  f"{'lacks it' if ov is None else f'gives {ov.dtype}{list(ov.shape)} != coremltools {how}'}")
        elif not same_bits(orig_idx.get(*k), ov):
            E(f"{fmt(k)}: not palettized, but `palettize decompress` does not give the original back")
    if not palettized:
        E("nothing palettized to compare")


# --------------------------------------------------------------------------------------
# Pipeline runs (once per session per case)
# --------------------------------------------------------------------------------------


class Run:
    def __init__(self, oracle, case, tmp):
        self.case = case
        self.tmp = Path(tmp)
        self.src = oracle.copy_model(case.model, self.tmp / "in")
        self.before = hash_tree(self.src)
        self.out = self.tmp / "out" / self.src.name
        self.out.parent.mkdir()
        self.report_path = self.tmp / "report.json"
        args = ["compress", self.src, "-o", self.out, "--report", self.report_path]
        if case.yaml:
            cfg = self.tmp / "config.yaml"
            cfg.write_text(case.yaml)
            args += ["--config", cfg]
        self.args = args + case.flags
        palettize(oracle, self.args, f"{case.id}: compress")
        self.report = json.loads(self.report_path.read_text())
        self.spec_in = co.read_spec(self.src)
        self.spec_out = co.read_spec(self.out)
        self.ct_idx = None
        self.how = None

    def coremltools_decompression(self):
        if self.ct_idx is None:
            self.ct_idx, self.how = co.decompressed_index(self.out, self.tmp)
        return self.ct_idx, self.how


@pytest.fixture(scope="session")
def pipeline_runs(oracle, tmp_path_factory):
    cache = {}

    def get(case_id):
        if case_id not in cache:
            cache[case_id] = None
            tmp = tmp_path_factory.mktemp("realworld_" + case_id)
            cache[case_id] = Run(oracle, CASES_BY_ID[case_id], tmp)
        if cache[case_id] is None:
            pytest.fail(f"{case_id}: the compress run failed earlier in this session", pytrace=False)
        return cache[case_id]

    return get


# --------------------------------------------------------------------------------------
# The fixtures hold what they are meant to
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", sorted(STAGES))
def test_pipeline_fixture_shape(oracle, model_id):
    kind, types = STAGES[model_id]
    spec = load_mlmodel(oracle.session_copy(model_id)).get_spec()
    assert spec.WhichOneof("Type") == kind
    assert [m.WhichOneof("Type") for m in stages(spec)] == types
    d = oracle.dump(model_id)
    assert any(expected_candidate(w) for w in d["weights"]), f"{model_id}: no weight to palettize"
    assert spec.specificationVersion == max(m.specificationVersion for m in stages(spec))


def test_manifest_fixture_shape(oracle, tmp_path):
    pkg = oracle.copy_model("fixture/manifest_overlays", tmp_path)
    m = read_manifest(pkg)
    paths = [e["path"] for e in m["itemInfoEntries"].values()]
    authors = {e["author"] for e in m["itemInfoEntries"].values()}
    assert list(m) == ["rootModelIdentifier", "itemInfoEntries", "fileFormatVersion"]
    assert paths[0] == "com.example.tools/provenance.json" and "com.apple.CoreML/model.mlmodel" in paths[1:]
    assert {"com.apple.CoreML/Metadata.json", "com.apple.CoreML/FeatureDescriptions.json",
            "com.example.tools/calibration"} <= set(paths)
    assert authors == {"com.apple.CoreML", "com.example.tools"}
    for rel, content in make_fixtures.OVERLAY_FILES.items():
        assert (pkg / "Data" / rel).read_bytes() == content, rel
    load_mlmodel(pkg)


# --------------------------------------------------------------------------------------
# 1: pipelines holding ML Programs beside other model types
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", list(CASES_BY_ID))
def test_pipeline_compress(pipeline_runs, case_id):
    r = pipeline_runs(case_id)
    errors = []
    assert hash_tree(r.src) == r.before, f"{case_id}: compress modified its INPUT package"
    leftovers = sorted(p.name for p in r.out.parent.iterdir() if p.name != r.out.name)
    assert not leftovers, f"{case_id}: leftover files beside the output: {leftovers}"
    try:
        load_mlmodel(r.out)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{case_id}: coremltools cannot load the output: {e!r}", pytrace=False)
    ct_idx, how = check_weights_against_coremltools(r.src, r.out, r.report, 2048, r.tmp, errors)
    r.ct_idx, r.how = ct_idx, how
    assert how == "WeightDecompressor"
    if r.case.grouped:
        for w in r.report["weights"]:
            if w["status"] == "palettized":
                shape = w["shape"]
                if w.get("luts") != shape[0] // 8 or (w.get("config") or {}).get("granularity") != "per_grouped_channel":
                    errors.append(f"{fmt(wkey(w))}: luts={w.get('luts')} config={w.get('config')} "
                                  f"(expected {shape[0] // 8} per_grouped_channel tables)")
    if errors:
        pytest.fail(f"{case_id}: {len(errors)} problem(s):\n  " + "\n  ".join(errors), pytrace=False)


@pytest.mark.parametrize("case_id", list(CASES_BY_ID))
def test_pipeline_other_models_kept(pipeline_runs, case_id):
    r = pipeline_runs(case_id)
    a, b = r.spec_in, r.spec_out
    assert a.WhichOneof("Type") == b.WhichOneof("Type") in PIPELINE_KINDS
    sa, sb = stages(a), stages(b)
    assert [m.WhichOneof("Type") for m in sb] == [m.WhichOneof("Type") for m in sa], "stages changed"
    assert b.description == a.description, f"{case_id}: the pipeline's description changed"
    n_other = 0
    for i, (ma, mb_) in enumerate(zip(sa, sb)):
        assert mb_.description == ma.description, f"{case_id}: stage {i} description changed"
        if ma.WhichOneof("Type") == "mlProgram":
            continue
        n_other += 1
        assert ser(mb_) == ser(ma), (
            f"{case_id}: stage {i} ({ma.WhichOneof('Type')}) is not byte-identical in the output spec")
        assert mb_ == ma
    assert n_other >= 1
    # Other fields of the pipeline message itself (names, and everything besides the models).
    kind = a.WhichOneof("Type")
    pa = a.pipeline if kind == "pipeline" else getattr(a, kind).pipeline
    pb = b.pipeline if kind == "pipeline" else getattr(b, kind).pipeline
    assert list(pb.names) == list(pa.names)


@pytest.mark.parametrize("case_id", list(CASES_BY_ID))
def test_pipeline_spec_versions(pipeline_runs, case_id):
    r = pipeline_runs(case_id)
    spec = r.spec_out
    inner = list(stages(spec))
    versions = [m.specificationVersion for m in inner]
    assert spec.specificationVersion >= max(versions), (
        f"{case_id}: pipeline specificationVersion {spec.specificationVersion} < an inner model's {versions}")
    assert spec.specificationVersion >= r.spec_in.specificationVersion, f"{case_id}: pipeline version lowered"
    targets = {t["program"]: t["target"] for t in r.report["targets"]}
    progs = dict(co.dump_weights.iter_programs(spec))
    assert set(targets) == set(progs), f"{case_id}: report targets {sorted(targets)}, programs {sorted(progs)}"
    for path, p in progs.items():
        tgt = targets[path]
        assert tgt == r.case.target, f"{case_id}: {path}: target {tgt}, expected {r.case.target}"
        assert p.specificationVersion == co.TARGET_SPEC[tgt], (
            f"{case_id}: {path}: specificationVersion {p.specificationVersion} for target {tgt}")
        if tgt == "iOS18":
            assert p.specificationVersion >= 9
        for fname, fn in p.mlProgram.functions.items():
            assert fn.opset == co.TARGET_OPSET[tgt], f"{case_id}: {path}/{fname}: opset {fn.opset} for {tgt}"
            assert list(fn.block_specializations) == [fn.opset], (
                f"{case_id}: {path}/{fname}: block_specializations {list(fn.block_specializations)}")


@pytest.mark.parametrize("case_id", list(CASES_BY_ID))
def test_pipeline_decompress(oracle, pipeline_runs, case_id):
    r = pipeline_runs(case_id)
    ct_idx, how = r.coremltools_decompression()
    dec = r.tmp / "dec" / r.src.name
    dec.parent.mkdir(exist_ok=True)
    before = hash_tree(r.out)
    palettize(oracle, ["decompress", r.out, "-o", dec, "--force"], f"{case_id}: decompress")
    assert hash_tree(r.out) == before, f"{case_id}: decompress modified its INPUT package"
    load_mlmodel(dec)
    errors = []
    check_decompress(r.src, dec, ct_idx, how, r.report, errors)
    # The dense weights are the ones the report's errors describe: recompute against the input.
    orig_idx, _ = co.const_index(r.src)
    dec_idx, _ = co.const_index(dec)
    for w in r.report["weights"]:
        k = wkey(w)
        v, o = dec_idx.get(*k), orig_idx.get(*k)
        if v is None or o is None or v.shape != o.shape:
            errors.append(f"{fmt(k)}: missing or reshaped after decompress")
            continue
        d = v.astype(np.float64) - o.astype(np.float64)
        if float(np.max(np.abs(d))) != w["max_abs_error"]:
            errors.append(f"{fmt(k)}: decompressed max error {float(np.max(np.abs(d)))!r}, "
                          f"report {w['max_abs_error']!r}")
    spec_dec = co.read_spec(dec)
    for i, (ma, mb_) in enumerate(zip(stages(r.spec_in), stages(spec_dec))):
        if ma.WhichOneof("Type") != "mlProgram" and ser(ma) != ser(mb_):
            errors.append(f"stage {i} ({ma.WhichOneof('Type')}) changed by decompress")
    if spec_dec.specificationVersion < max(m.specificationVersion for m in stages(spec_dec)):
        errors.append("pipeline specificationVersion below an inner model's after decompress")
    if errors:
        pytest.fail(f"{case_id}: {len(errors)} problem(s):\n  " + "\n  ".join(errors), pytrace=False)


# --------------------------------------------------------------------------------------
# 2: manifest overlays and non-standard authors
# --------------------------------------------------------------------------------------


def _overlay_files(pkg):
    """relative path -> bytes of every file in Data/ that is not the model or its weights."""
    data = Path(pkg) / "Data"
    res = {}
    for p in sorted(data.rglob("*")):
        rel = p.relative_to(data).as_posix()
        if p.is_file() and rel != "com.apple.CoreML/model.mlmodel" and not rel.startswith("com.apple.CoreML/weights/"):
            res[rel] = p.read_bytes()
    return res


def _check_manifest_kept(tag, src, out):
    m_in, m_out = read_manifest(src), read_manifest(out)
    assert list(m_out) == list(m_in), f"{tag}: Manifest.json top-level keys {list(m_out)} vs {list(m_in)}"
    assert m_out["fileFormatVersion"] == m_in["fileFormatVersion"]
    # Entries one for one: same identifiers, same order, same author/description/name/path.
    assert list(m_out["itemInfoEntries"].items()) == list(m_in["itemInfoEntries"].items()), (
        f"{tag}: itemInfoEntries changed:\n in:  {m_in['itemInfoEntries']}\n out: {m_out['itemInfoEntries']}")
    assert m_out["rootModelIdentifier"] == m_in["rootModelIdentifier"]
    for entry in m_out["itemInfoEntries"].values():
        assert (Path(out) / "Data" / entry["path"]).exists(), f"{tag}: {entry['path']} listed but missing"
    want = _overlay_files(src)
    got = _overlay_files(out)
    assert set(want) == set(make_fixtures.OVERLAY_FILES), sorted(want)
    assert sorted(got) == sorted(want), f"{tag}: overlay files {sorted(got)} vs {sorted(want)}"
    for rel, content in want.items():
        assert got[rel] == content, f"{tag}: {rel} is not byte-identical in the output"


def test_manifest_overlays_compress_and_decompress(oracle, tmp_path):
    # Note: coremltools rewrites Manifest.json when it opens a package (sorted keys, its own
    # layout), so every manifest and hash check here runs before coremltools touches a package.
    src = oracle.copy_model("fixture/manifest_overlays", tmp_path / "in")
    before = hash_tree(src)
    out = tmp_path / "out" / src.name
    out.parent.mkdir()
    report = tmp_path / "report.json"
    palettize(oracle, ["compress", src, "-o", out, "--nbits", "4", "--report", report], "compress")
    assert hash_tree(src) == before, "compress modified its INPUT package"
    _check_manifest_kept("compress", src, out)

    dec = tmp_path / "dec" / src.name
    dec.parent.mkdir()
    before_out = hash_tree(out)
    palettize(oracle, ["decompress", out, "-o", dec], "decompress")
    assert hash_tree(out) == before_out, "decompress modified its INPUT package"
    assert hash_tree(src) == before
    _check_manifest_kept("decompress", src, dec)

    # Now coremltools: each loads, and the weights are what the report says.
    for pkg in (out, dec):
        load_mlmodel(pkg)
    rep = json.loads(report.read_text())
    errors = []
    ct_idx, how = check_weights_against_coremltools(src, out, rep, 2048, tmp_path, errors)
    check_decompress(src, dec, ct_idx, how, rep, errors)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("flags", [["--nbits", "2"], ["--granularity", "per_grouped_channel", "--group-size", "16"]])
def test_manifest_overlays_output_dir(oracle, tmp_path, flags):
    """The same through `compress --output-dir` (batch path), and with a target raised to iOS18."""
    src = oracle.copy_model("fixture/manifest_overlays", tmp_path / "in")
    before = hash_tree(src)
    out_dir = tmp_path / "zoo-out"
    palettize(oracle, ["compress", src, "--output-dir", out_dir, "-q"] + flags, "compress --output-dir")
    assert hash_tree(src) == before, "compress --output-dir modified its INPUT package"
    out = out_dir / src.name
    _check_manifest_kept("compress --output-dir", src, out)
    spec = load_mlmodel(out).get_spec()
    want = 9 if "per_grouped_channel" in flags else 8
    assert spec.specificationVersion == want


# --------------------------------------------------------------------------------------
# 3: immediate-value weights palettized with a config
# --------------------------------------------------------------------------------------

IMMEDIATE_YAML = """\
config_type: OpPalettizerConfig
global_config:
  mode: kmeans
  nbits: 4
  granularity: per_grouped_channel
  group_size: 16
op_type_configs:
  gather: null
"""


@pytest.mark.parametrize("model_id", ["fixture/immediate_fp32", "fixture/immediate_fp16"])
def test_immediate_weights_with_config(oracle, tmp_path, model_id):
    src = oracle.copy_model(model_id, tmp_path / "in")
    before = hash_tree(src)
    d = oracle.dump(model_id)
    imm = [w for w in d["weights"] if w["storage"] == "immediate" and expected_candidate(w)]
    assert len(imm) == 1, f"{model_id}: fixture no longer has one immediate candidate"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(IMMEDIATE_YAML)
    out = tmp_path / "out" / src.name
    out.parent.mkdir()
    report = tmp_path / "report.json"
    palettize(oracle, ["compress", src, "-o", out, "--config", cfg, "--report", report], f"{model_id}: compress")
    assert hash_tree(src) == before
    load_mlmodel(out)
    rep = json.loads(report.read_text())
    errors = []
    ct_idx, how = check_weights_against_coremltools(src, out, rep, 2048, tmp_path, errors)
    assert how == "decompress_weights"
    w = {x["name"]: x for x in rep["weights"]}[imm[0]["name"]]
    if not (w["status"] == "palettized" and w["luts"] == imm[0]["shape"][0] // 16 and w["nbits"] == 4
            and w["config_source"] == "global_config"):
        errors.append(f"{imm[0]['name']}: {w}")
    assert [t["target"] for t in rep["targets"]] == ["iOS18"]
    dec = tmp_path / "dec" / src.name
    dec.parent.mkdir()
    palettize(oracle, ["decompress", out, "-o", dec], f"{model_id}: decompress")
    load_mlmodel(dec)
    check_decompress(src, dec, ct_idx, how, rep, errors)
    if errors:
        pytest.fail(f"{model_id}: {len(errors)} problem(s):\n  " + "\n  ".join(errors), pytrace=False)
