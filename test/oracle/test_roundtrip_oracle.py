"""`resave IN OUT` (load with the C++ library, save unchanged) checked with coremltools."""

import json
from pathlib import Path

import pytest

import dump_weights
from oracle_conftest import fmt_key, hash_tree, load_mlmodel, new_uuid, read_manifest, weight_key


def _check_manifest_files(model_id, out_pkg, manifest):
    data = Path(out_pkg) / "Data"
    for ident, entry in manifest["itemInfoEntries"].items():
        p = data / entry["path"]
        assert p.exists(), f"{model_id}: manifest entry {ident} names {entry['path']} but {p} is missing"
    root = manifest["rootModelIdentifier"]
    assert root in manifest["itemInfoEntries"], f"{model_id}: rootModelIdentifier {root} has no entry"
    assert (data / manifest["itemInfoEntries"][root]["path"]).is_file(), f"{model_id}: root model file missing"


def _blob_groups(weights):
    groups = {}
    for w in weights:
        if w.get("blob"):
            groups.setdefault((w["program"], w["blob"]["file"], w["blob"]["offset"]), []).append(fmt_key(weight_key(w)))
    return {tuple(sorted(v)) for v in groups.values()}


def _resave(oracle, model_id, tmp_path, prepare=None):
    src = oracle.copy_model(model_id, tmp_path / "in")
    if prepare:
        prepare(src)
    before = hash_tree(src)
    out = tmp_path / "out" / src.name
    out.parent.mkdir()
    oracle.resave(src, out, what=f"{model_id}: resave")
    after = hash_tree(src)
    changed = sorted(k for k in set(before) | set(after) if before.get(k, "?") != after.get(k, "?"))
    assert not changed, f"{model_id}: resave modified its INPUT package: {changed}"
    assert out.is_dir(), f"{model_id}: resave did not create {out}"
    return src, out


def test_resave_roundtrip(oracle, model_id, tmp_path, npz_roundtrip):
    src, out = _resave(oracle, model_id, tmp_path)

    # coremltools can read the result.
    try:
        spec_out = load_mlmodel(out).get_spec()
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{model_id}: coremltools cannot load the resaved package: {e!r}")
    spec_in = load_mlmodel(src).get_spec()
    assert spec_out.WhichOneof("Type") == spec_in.WhichOneof("Type"), f"{model_id}: model type changed"
    assert spec_out.specificationVersion == spec_in.specificationVersion, f"{model_id}: spec version changed"
    assert spec_out.description == spec_in.description, f"{model_id}: model description changed"

    # Every weight value bit-identical, every const record identical.
    want = dump_weights.dump(src)
    try:
        got = dump_weights.dump(out)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{model_id}: coremltools cannot read the weights of the resaved package: {e!r}")
    # Functions are a protobuf map: their order in the file is not part of the model.
    def programs(dump):
        return [dict(p, functions=sorted(p["functions"], key=lambda f: f["name"])) for p in dump["model"]["programs"]]
    assert programs(got) == programs(want), f"{model_id}: programs/functions changed"
    wv = npz_roundtrip(want["values"], "in")
    gv = npz_roundtrip(got["values"], "out")
    problems = []
    for k in sorted(set(wv) - set(gv)):
        problems.append(f"{k}: missing after resave")
    for k in sorted(set(gv) - set(wv)):
        problems.append(f"{k}: new const after resave")
    for k in sorted(set(wv) & set(gv)):
        a, b = wv[k], gv[k]
        if a.dtype != b.dtype or a.shape != b.shape:
            problems.append(f"{k}: {a.dtype}{list(a.shape)} became {b.dtype}{list(b.shape)}")
        elif a.tobytes() != b.tobytes():
            n = int((a.reshape(-1).view("u1") != b.reshape(-1).view("u1")).sum()) if a.size else 0
            problems.append(f"{k}: values differ ({n} differing bytes of {a.nbytes})")
    wr = {weight_key(w): w for w in want["weights"]}
    for w in got["weights"]:
        k = weight_key(w)
        if k in wr:
            # blob offsets may legitimately move; everything else must stay.
            diff = {f: (wr[k].get(f), w[f]) for f in w if f != "blob" and wr[k].get(f) != w[f]}
            if diff:
                problems.append(f"{fmt_key(k)}: record changed (before, after): {diff}")
    # Consts that shared one blob (e.g. deduplicated multifunction weights) still share one,
    # and consts with distinct blobs stay distinct.
    if _blob_groups(want["weights"]) != _blob_groups(got["weights"]):
        problems.append(
            f"blob sharing changed: before={sorted(_blob_groups(want['weights']))} "
            f"after={sorted(_blob_groups(got['weights']))}"
        )
    assert not problems, f"{model_id}: weights changed by resave:\n  " + "\n  ".join(problems)

    # Manifest identity and completeness.
    m_in, m_out = read_manifest(src), read_manifest(out)
    assert m_out["itemInfoEntries"] == m_in["itemInfoEntries"], (
        f"{model_id}: Manifest itemInfoEntries changed:\n in={m_in['itemInfoEntries']}\n out={m_out['itemInfoEntries']}"
    )
    assert m_out["rootModelIdentifier"] == m_in["rootModelIdentifier"], f"{model_id}: rootModelIdentifier changed"
    assert m_out.get("fileFormatVersion") == m_in.get("fileFormatVersion"), f"{model_id}: fileFormatVersion changed"
    _check_manifest_files(model_id, out, m_out)


EXTRA_ITEMS = {
    new_uuid(0xC0FFEE01): {
        "author": "com.apple.CoreML",
        "description": "CoreML Model Metadata",
        "name": "Metadata.json",
        "path": "com.apple.CoreML/Metadata.json",
    },
    new_uuid(0xC0FFEE02): {
        "author": "com.example.tool",
        "description": "Notes written by another tool",
        "name": "notes.txt",
        "path": "com.example.tool/notes.txt",
    },
}
EXTRA_CONTENT = {
    "com.apple.CoreML/Metadata.json": json.dumps(
        {"author": "oracle test", "shortDescription": "extra manifest item", "version": "1.0"}, indent=2
    ).encode(),
    "com.example.tool/notes.txt": b"not a Core ML file\n\x00\x01\x02 binary tail\xff",
}


@pytest.mark.parametrize("model_id", ["fixture/linear_fp16", "fixture/pipeline", "fixture/multifunction"])
def test_resave_keeps_extra_manifest_items(oracle, model_id, tmp_path):
    def prepare(pkg):
        manifest = read_manifest(pkg)
        manifest["itemInfoEntries"].update(EXTRA_ITEMS)
        (pkg / "Manifest.json").write_text(json.dumps(manifest, indent=4))
        for rel, content in EXTRA_CONTENT.items():
            p = pkg / "Data" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)

    src, out = _resave(oracle, model_id, tmp_path, prepare)
    m_in, m_out = read_manifest(src), read_manifest(out)
    for ident, entry in EXTRA_ITEMS.items():
        assert m_out["itemInfoEntries"].get(ident) == entry, (
            f"{model_id}: extra manifest item {ident} ({entry['path']}) lost or changed: "
            f"{m_out['itemInfoEntries'].get(ident)}"
        )
    assert m_out["itemInfoEntries"] == m_in["itemInfoEntries"], f"{model_id}: itemInfoEntries changed"
    assert m_out["rootModelIdentifier"] == m_in["rootModelIdentifier"], f"{model_id}: rootModelIdentifier changed"
    for rel, content in EXTRA_CONTENT.items():
        p = out / "Data" / rel
        assert p.is_file(), f"{model_id}: {rel} missing after resave"
        assert p.read_bytes() == content, f"{model_id}: {rel} changed by resave"
    _check_manifest_files(model_id, out, m_out)
    load_mlmodel(out).get_spec()
    # Without blob offsets, in (program, function, name) order: functions are a protobuf map.
    def strip(ws):
        return sorted(({k: v for k, v in w.items() if k != "blob"} for w in ws),
                      key=lambda w: (w["program"], w["function"], w["name"]))
    assert strip(dump_weights.dump(out)["weights"]) == strip(dump_weights.dump(src)["weights"]), (
        f"{model_id}: weights changed"
    )
