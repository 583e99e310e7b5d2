"""`palettize inspect --json` compared with coremltools' own reading of each model.

The oracle is scripts/oracle/dump_weights.py (coremltools milproto -> pymil loader), itself
cross-checked against coremltools.optimize.coreml.get_weights_metadata.
"""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from oracle_conftest import (
    DEFAULT_THRESHOLD,
    ORACLE_SCRIPTS,
    REPO_ROOT,
    consumer_set,
    expected_candidate,
    fmt_key,
    load_mlmodel,
    weight_key,
)

MODEL_TYPES = {"mlProgram", "pipeline", "pipelineClassifier", "pipelineRegressor"}


def _get_weights_metadata(path, **kw):
    import coremltools.optimize.coreml as cto

    mlmodel = load_mlmodel(path)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cto.get_weights_metadata(mlmodel, **kw)


def _index(weights, model_id, source):
    res = {}
    for w in weights:
        k = weight_key(w)
        assert k not in res, f"{model_id}: {source} lists weight {fmt_key(k)} twice"
        res[k] = w
    return res


def _compare_weights(model_id, oracle_ws, got_ws, threshold, errors):
    want = _index(oracle_ws, model_id, "coremltools")
    got = _index(got_ws, model_id, "inspect")
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        errors.append(f"weights missing from inspect: {[fmt_key(k) for k in missing]}")
    if extra:
        errors.append(f"weights in inspect but not in coremltools: {[fmt_key(k) for k in extra]}")
    for k in sorted(set(want) & set(got)):
        w, g = want[k], got[k]
        name = fmt_key(k)

        def chk(field, ok, shown_want, shown_got):
            if not ok:
                errors.append(f"{name}: {field}: coremltools={shown_want!r} inspect={shown_got!r}")

        chk("dtype", g.get("dtype") == w["dtype"], w["dtype"], g.get("dtype"))
        chk("shape", list(g.get("shape", [])) == w["shape"], w["shape"], g.get("shape"))
        chk("elements", g.get("elements") == w["elements"], w["elements"], g.get("elements"))
        chk("bytes", g.get("bytes") == w["bytes"], w["bytes"], g.get("bytes"))
        chk("storage", g.get("storage") == w["storage"], w["storage"], g.get("storage"))
        chk("unique_values", g.get("unique_values") == w["unique_values"],
            w["unique_values"], g.get("unique_values"))
        gs = g.get("sparsity")
        chk("sparsity", isinstance(gs, (int, float)) and abs(gs - w["sparsity"]) <= 1e-12,
            w["sparsity"], gs)
        gc = {(c.get("op_type"), c.get("op_name"), c.get("input")) for c in g.get("consumers", [])}
        wc = consumer_set(w)
        chk("consumers", gc == wc, sorted(wc), sorted(gc))
        exp = expected_candidate(w, threshold)
        chk(f"candidate (threshold {threshold})", g.get("candidate") is exp, exp, g.get("candidate"))
        reason = g.get("reason")
        if not isinstance(reason, str):
            errors.append(f"{name}: reason is not a string: {reason!r}")
        elif g.get("candidate") is True and reason != "":
            errors.append(f"{name}: candidate but reason is {reason!r} (expected \"\")")
        elif g.get("candidate") is False and not reason.strip():
            errors.append(f"{name}: not a candidate but reason is empty")
    return want, got


def _compare_model(model_id, oracle_model, got_model, errors):
    if not isinstance(got_model, dict):
        errors.append(f"'model' is not an object: {got_model!r}")
        return
    if got_model.get("specification_version") != oracle_model["specification_version"]:
        errors.append(
            f"model.specification_version: coremltools={oracle_model['specification_version']} "
            f"inspect={got_model.get('specification_version')}"
        )
    if oracle_model["type"] in MODEL_TYPES and got_model.get("type") != oracle_model["type"]:
        errors.append(f"model.type: coremltools={oracle_model['type']} inspect={got_model.get('type')}")
    if not isinstance(got_model.get("path"), str):
        errors.append(f"model.path is not a string: {got_model.get('path')!r}")
    twb = got_model.get("total_weight_bytes")
    if not (isinstance(twb, int) and twb >= 0):
        errors.append(f"model.total_weight_bytes is not a non-negative int: {twb!r}")

    def norm(programs):
        return sorted(
            (
                p.get("path"),
                p.get("specification_version"),
                tuple(sorted((f.get("name"), f.get("opset")) for f in p.get("functions", []))),
            )
            for p in programs
        )

    want = norm(oracle_model["programs"])
    got = norm(got_model.get("programs", []))
    if want != got:
        errors.append(f"model.programs (path, spec version, functions): coremltools={want} inspect={got}")


def _fail(model_id, errors, what):
    if errors:
        pytest.fail(f"{model_id}: {what}: {len(errors)} problem(s):\n  " + "\n  ".join(errors), pytrace=False)


# --------------------------------------------------------------------------------------
# Oracle self-checks (no binary needed)
# --------------------------------------------------------------------------------------


def test_oracle_matches_get_weights_metadata(oracle, model_id):
    """dump_weights' list == get_weights_metadata(weight_threshold=0) for plain single-function models."""
    if not oracle.is_single_function_program(model_id):
        pytest.skip("get_weights_metadata only handles single-function ML Programs")
    d = oracle.dump(model_id)
    meta = _get_weights_metadata(oracle.session_copy(model_id), weight_threshold=0)
    ours = {w["name"]: w for w in d["weights"]}
    # coremltools quirk: the milproto->pymil loader turns every constexpr_* parameter (iOS16
    # attributes, iOS18 value bindings) into a synthetic pymil const named
    # "<constexpr op>_<param>_<n>"; get_weights_metadata lists those although the file has no
    # such const op.  dump_weights (and palettize) list only real const ops.
    synthetic = {
        n for n, m in meta.items()
        if n not in ours and m.child_ops and all(c.op_type.startswith("constexpr_") for c in m.child_ops)
    }
    meta = {n: m for n, m in meta.items() if n not in synthetic}
    assert set(ours) == set(meta), (
        f"{model_id}: const names differ: only dump_weights={sorted(set(ours) - set(meta))} "
        f"only get_weights_metadata={sorted(set(meta) - set(ours))}"
    )
    for name, m in meta.items():
        w = ours[name]
        assert list(m.val.shape) == w["shape"], f"{model_id}/{name}: shape {m.val.shape} vs {w['shape']}"
        assert m.val.dtype.name == w["dtype"], f"{model_id}/{name}: dtype {m.val.dtype} vs {w['dtype']}"
        assert m.unique_values == w["unique_values"], f"{model_id}/{name}: unique_values"
        assert abs(m.sparsity - w["sparsity"]) <= 1e-12, f"{model_id}/{name}: sparsity"
        got_children = {(c.op_type, c.name) for c in m.child_ops}
        ours_children = {(c["op_type"], c["op_name"]) for c in w["consumers"]}
        assert got_children == ours_children, f"{model_id}/{name}: consumers {got_children} vs {ours_children}"


def test_dump_weights_cli(oracle, tmp_path):
    """The CLI (--json, --out) of dump_weights.py works and agrees with the in-process dump."""
    model_id = "fixture/pipeline"
    pkg = oracle.session_copy(model_id)
    out = tmp_path / "w.npz"
    proc = subprocess.run(
        [sys.executable, str(ORACLE_SCRIPTS / "dump_weights.py"), str(pkg), "--json", "--out", str(out)],
        capture_output=True, timeout=300, cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    js = json.loads(proc.stdout)
    d = oracle.dump(model_id)
    assert js["weights"] == d["weights"]
    assert js["model"]["programs"] == d["model"]["programs"]
    with np.load(out) as z:
        assert sorted(z.files) == sorted(d["values"])
        for k in z.files:
            assert z[k].tobytes() == d["values"][k].tobytes(), k
    assert any(k.startswith("pipeline.models[1]/main/") for k in d["values"])


def test_fixture_expectations(oracle):
    """The fixtures contain the situations they are meant to (guards against coremltools drift)."""
    def recs(model_id):
        return {fmt_key(weight_key(w)): w for w in oracle.dump(model_id)["weights"]}

    imm = recs("fixture/immediate_fp32")
    assert imm["main/lin_weight_0"]["storage"] == "immediate" and imm["main/lin_weight_0"]["elements"] == 8192
    imm16 = recs("fixture/immediate_fp16")
    big16 = [w for w in imm16.values() if w["elements"] == 8192]
    assert big16 and big16[0]["storage"] == "immediate" and big16[0]["dtype"] == "float16"

    c18 = recs("fixture/compressed_ios18")
    int8 = [w for w in c18.values() if w["dtype"] == "int8"]
    assert int8 and all(c["op_type"].startswith("constexpr_") for c in int8[0]["consumers"])
    assert not expected_candidate(int8[0], 0)

    misc = recs("fixture/misc")
    assert consumer_set(misc["main/shared_w"]) == {("linear", "lin_shared", "weight"), ("matmul", "mm_shared", "y")}
    assert any(w["elements"] == 2048 and len(w["shape"]) == 2 for w in misc.values())
    assert any(len(w["shape"]) == 1 and w["elements"] > 2048 for w in misc.values())
    assert any(w["dtype"] == "int32" and w["elements"] >= 10 for w in misc.values())

    cond = recs("fixture/cond")
    assert consumer_set(cond["main/w_outer"]) == {("linear", "lin_true", "weight"), ("matmul", "mm_false", "y")}

    mf = oracle.dump("fixture/multifunction")
    assert {f["name"] for f in mf["model"]["programs"][0]["functions"]} == {"main", "classify"}

    pipe = oracle.dump("fixture/pipeline")["model"]
    assert [p["path"] for p in pipe["programs"]] == ["pipeline.models[0]", "pipeline.models[1]"]

    versions = {
        oracle.dump(f"fixture/{n}")["model"]["specification_version"]
        for n in ("linear_fp16", "linear_fp32", "conv", "matmul")
    }
    assert {6, 7, 9} <= versions | {oracle.dump("fixture/multifunction")["model"]["specification_version"]}


# --------------------------------------------------------------------------------------
# The binary against the oracle
# --------------------------------------------------------------------------------------


def test_inspect_matches_coremltools(oracle, model_id, tmp_path):
    d = oracle.dump(model_id)
    pkg = oracle.copy_model(model_id, tmp_path)
    got = oracle.inspect(pkg, what=f"{model_id}: inspect")
    errors = []
    _compare_model(model_id, d["model"], got.get("model"), errors)
    weights = got.get("weights")
    if not isinstance(weights, list):
        errors.append(f"'weights' is not a list: {weights!r}")
    else:
        _compare_weights(model_id, d["weights"], weights, DEFAULT_THRESHOLD, errors)
    _fail(model_id, errors, "inspect --json differs from coremltools")


def test_inspect_threshold_changes_only_candidate(oracle, model_id, tmp_path):
    d = oracle.dump(model_id)
    pkg = oracle.copy_model(model_id, tmp_path)
    default = oracle.inspect(pkg, what=f"{model_id}: inspect")
    errors = []
    for thr in (0, 5000):
        other = oracle.inspect(pkg, ["--weight-threshold", str(thr)],
                               what=f"{model_id}: inspect --weight-threshold {thr}")
        _compare_weights(model_id, d["weights"], other.get("weights", []), thr, errors)

        def strip(js):
            return {
                "model": js.get("model"),
                "weights": sorted(
                    (json.dumps({k: v for k, v in w.items() if k not in ("candidate", "reason")},
                                sort_keys=True)
                     for w in js.get("weights", []))
                ),
            }

        if strip(default) != strip(other):
            errors.append(f"--weight-threshold {thr} changed more than candidate/reason")
    _fail(model_id, errors, "weight threshold")


def test_inspect_large_weights_match_get_weights_metadata(oracle, model_id, tmp_path):
    """Names with >= 2048 elements == keys of get_weights_metadata(model) (default threshold)."""
    if not oracle.is_single_function_program(model_id):
        pytest.skip("get_weights_metadata only handles single-function ML Programs")
    pkg = oracle.copy_model(model_id, tmp_path)
    got = oracle.inspect(pkg, what=f"{model_id}: inspect")
    names = {w["name"] for w in got.get("weights", []) if w.get("elements", 0) >= DEFAULT_THRESHOLD}
    meta = {
        n for n, m in _get_weights_metadata(oracle.session_copy(model_id)).items()
        # skip the loader's synthetic consts for constexpr_* parameters (see above)
        if not (m.child_ops and all(c.op_type.startswith("constexpr_") for c in m.child_ops))
        or n in names
    }
    assert names == meta, (
        f"{model_id}: weights with >= {DEFAULT_THRESHOLD} elements: only inspect={sorted(names - meta)} "
        f"only get_weights_metadata={sorted(meta - names)}"
    )
