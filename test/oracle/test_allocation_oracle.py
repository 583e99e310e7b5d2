"""An allocation's outputs (issue 14 items 4 and 5), checked by their consumers.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize ALLOCATION_OUTPUTS_BIN=build/test/allocation_outputs \\
        FIXTURES_DIR=build/fixtures .venv/bin/python -m pytest test/oracle/test_allocation_oracle.py

ALLOCATION_OUTPUTS_BIN (test/tools/allocation_outputs.cc) turns an allocation, in the report's
`allocation` section form, into the library's --emit-config YAML, --plot SVG and report. Here:
- coremltools' OptimizationConfig.from_yaml loads the YAML, and palettize_weights with it
  palettizes exactly the allocated consts at their chosen nbits (decoded by `palettize compare`),
  as `palettize compress --config` does with the same file;
- the Torch-schema YAML holds module_name_configs with n_bits;
- the report's section reads back as the allocation;
- the SVG parses (xml.etree) with one bar per weight and every mark inside its panel, and renders
  in headless Chromium (Debian's `chromium`, which scripts/setup installs) to a PNG that is not
  blank. Without chromium the render test FAILS.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
import yaml

import compress_oracle as co
from oracle_conftest import SUBPROCESS_TIMEOUT

SVG = "{http://www.w3.org/2000/svg}"

BASE_CONFIG = {"mode": "kmeans", "nbits": 6, "granularity": "per_tensor", "group_size": 32,
               "channel_axis": None, "cluster_dim": 1, "enable_per_channel_scale": False,
               "lut_dtype": None, "weight_threshold": 2048}


def curve(elements, bits=(2, 3, 4, 6, 8), scale=0.01):
    """A plausible curve: bytes of packed indices plus a table, SSE falling 4x per bit."""
    out = []
    for b in bits:
        sse = elements * scale * 4.0 ** (-b)
        out.append({"nbits": b, "bytes": elements * b // 8 + 2 ** b * 2, "sse": sse, "cost": sse,
                    "snr_db": 10 * math.log10(elements * scale / sse)})
    out.append({"nbits": None, "bytes": elements * 2, "sse": 0.0, "cost": 0.0, "snr_db": None})
    return out


def allocation(weights, objective="target_bpw", budget=4.0):
    """weights: [(name, config_key, elements, chosen index, config)]."""
    ws = []
    for name, key, elements, chosen, config in weights:
        ws.append({"name": name, "config_key": key, "elements": elements, "config": config,
                   "chosen": chosen, "candidates": curve(elements)})
    nbytes = sum(w["candidates"][w["chosen"]]["bytes"] for w in ws)
    elements = sum(w["elements"] for w in ws)
    return {"objective": objective, "budget": budget, "cost": "sse", "bytes": nbytes, "elements": elements,
            "bpw": 8 * nbytes / elements, "total_cost": sum(w["candidates"][w["chosen"]]["cost"] for w in ws),
            "gap": 0.0, "weights": ws}


def run(oracle, var, *args):
    return oracle.run(var, list(args), f"{var} {' '.join(str(a) for a in args)}")


def outputs(oracle, tmp_path, alloc, *flags):
    src = tmp_path / "allocation.json"
    src.write_text(json.dumps(alloc))
    run(oracle, "ALLOCATION_OUTPUTS_BIN", src, *flags)


def ct_nbits(pkg):
    """{const name: nbits} of the consts coremltools palettized (ops "<name>_palettized"), from
    the length of their iOS18 LUT input ([..., 2^nbits, cluster_dim])."""
    ops = co.proto_op_index(pkg)[("", "main")]
    out = {}
    for op in ops.values():
        name = co.op_name(op)
        if op.type == "constexpr_lut_to_dense" and name.endswith("_palettized"):
            arg = op.inputs["lut"].arguments[0]  # an inline value, or a const op's output
            lut_type = arg.value.type if arg.HasField("value") else ops[arg.name].outputs[0].type
            entries = co.binding_dims(lut_type)[-2]
            out[name[: -len("_palettized")]] = entries.bit_length() - 1
    return out


def chosen_nbits(w):
    return w["candidates"][w["chosen"]]["nbits"]


# --------------------------------------------------------------------------------------
# --emit-config
# --------------------------------------------------------------------------------------


def test_coremltools_palettizes_as_emitted(oracle, tmp_path):
    """The emitted config makes coremltools' palettize_weights and `palettize compress` give each
    allocated const its chosen nbits (and leave the one kept uncompressed), keyed by const name."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    src = oracle.source_path("fixture/matmul")  # iOS18: 3-bit allowed
    names = [w["name"] for w in oracle.inspect(src)["weights"] if w["candidate"]]
    assert len(names) == 3, names
    dump = {w["name"]: w for w in oracle.inspect(src)["weights"]}
    # 2-bit, kept uncompressed, 3-bit.
    alloc = allocation([(n, n, dump[n]["elements"], c, BASE_CONFIG) for n, c in zip(names, (0, 5, 1))])
    base = tmp_path / "base.yaml"
    base.write_text("config_type: OpPalettizerConfig\nglobal_config: {mode: kmeans, nbits: 6}\n")
    emitted = tmp_path / "emitted.yaml"
    outputs(oracle, tmp_path, alloc, "--config", base, "--yaml", emitted)

    config = cto.OptimizationConfig.from_yaml(str(emitted))
    assert config.global_config.nbits == 6
    want = {w["name"]: chosen_nbits(w) for w in alloc["weights"]}
    assert set(config.op_name_configs) == set(want)
    for name, nbits in want.items():
        got = config.op_name_configs[name]
        assert (got is None) if nbits is None else (got.nbits == nbits and got.mode == "KMEANS"), (name, got)

    ct_out = tmp_path / "ct.mlpackage"
    model = ct.models.MLModel(str(src), skip_model_load=True)
    cto.palettize_weights(model, config).save(str(ct_out))
    ours = tmp_path / "ours.mlpackage"
    report = tmp_path / "report.json"
    run(oracle, "PALETTIZE_BIN", "compress", src, "-o", ours, "--config", emitted, "--report", report)
    by_name = {w["name"]: w for w in json.loads(report.read_text())["weights"]}
    assert ct_nbits(ct_out) == {n: b for n, b in want.items() if b is not None}
    proc = run(oracle, "PALETTIZE_BIN", "compare", src, ours, "--json")
    states = {w["name"]: w for w in json.loads(proc.stdout)["weights"]}
    for name, nbits in want.items():
        w = states[name]
        if nbits is None:
            assert w["state"] == "unchanged" and w["sse"] == 0, (name, w)
        else:
            assert (w["state"], w["nbits"]) == ("palettized", nbits), (name, w)
    for name, nbits in want.items():
        assert by_name[name]["nbits"] == nbits, by_name[name]
        if nbits is None:
            assert by_name[name]["reason"] == f"skipped by config (op_name_configs.{name} is null)"


def test_coremltools_reads_every_field_and_name(oracle, tmp_path):
    """Names YAML would misread, grouped configs, and the base config's own entries survive
    coremltools' from_yaml."""
    import coremltools.optimize.coreml as cto

    grouped = dict(BASE_CONFIG, granularity="per_grouped_channel", group_size=16, channel_axis=1,
                   weight_threshold=100)
    uniform = dict(BASE_CONFIG, mode="uniform", enable_per_channel_scale=True)
    names = ["null", "a: b", "#hash", 'quote"back\\slash', "über", "tab\there", "- dash", "123"]
    configs = [grouped, uniform, BASE_CONFIG]
    alloc = allocation([(n, n, 4096, i % 6, configs[i % 3]) for i, n in enumerate(names)])
    base = tmp_path / "base.yaml"
    base.write_text("config_type: OpPalettizerConfig\nglobal_config: {mode: kmeans, nbits: 4}\n"
                    "op_type_configs: {conv: null, linear: {mode: kmeans, nbits: 8}}\n"
                    "op_name_configs: {other_op: {mode: unique}}\n")
    emitted = tmp_path / "emitted.yaml"
    outputs(oracle, tmp_path, alloc, "--config", base, "--yaml", emitted)
    config = cto.OptimizationConfig.from_yaml(str(emitted))
    assert config.op_type_configs["conv"] is None
    assert config.op_type_configs["linear"].nbits == 8
    assert config.op_name_configs["other_op"].mode == "UNIQUE"
    assert set(config.op_name_configs) == set(names) | {"other_op"}
    for w in alloc["weights"]:
        got = config.op_name_configs[w["name"]]
        nbits = chosen_nbits(w)
        if nbits is None:
            assert got is None, w["name"]
            continue
        c = w["config"]
        assert got.nbits == nbits
        assert got.mode == c["mode"].upper()
        assert got.granularity.name.lower() == c["granularity"]
        assert got.group_size == c["group_size"]
        assert got.channel_axis == c["channel_axis"]
        assert got.enable_per_channel_scale == c["enable_per_channel_scale"]
        assert got.weight_threshold == c["weight_threshold"]


def test_torch_schema(oracle, tmp_path):
    alloc = allocation([("encoder.q.weight", "encoder.q", 8192, 2, BASE_CONFIG),
                        ("encoder.k.weight", "encoder.k", 8192, 5, BASE_CONFIG),
                        ("decoder.weight", "decoder", 4096, 0,
                         dict(BASE_CONFIG, granularity="per_grouped_channel", group_size=8))])
    base = tmp_path / "base.yaml"
    base.write_text("global_config: {n_bits: 6}\nmodule_type_configs: {Embedding: null}\n")
    emitted = tmp_path / "emitted.yaml"
    outputs(oracle, tmp_path, alloc, "--torch", "--config", base, "--yaml", emitted)
    doc = yaml.safe_load(emitted.read_text())
    assert set(doc) == {"global_config", "module_type_configs", "module_name_configs"}
    assert doc["global_config"] == {"n_bits": 6, "granularity": "per_tensor"}
    assert doc["module_type_configs"] == {"Embedding": None}
    assert doc["module_name_configs"] == {
        "encoder.q": {"n_bits": 4, "granularity": "per_tensor"},
        "encoder.k": None,
        "decoder": {"n_bits": 2, "granularity": "per_grouped_channel", "group_size": 8},
    }


# --------------------------------------------------------------------------------------
# The report's section
# --------------------------------------------------------------------------------------


def test_report_section_reads_back(oracle, tmp_path):
    alloc = allocation([(f"w{i}", f"w{i}", 4096 * (i + 1), i % 6, BASE_CONFIG) for i in range(7)],
                       objective="target_size", budget=30000.0)
    report = tmp_path / "report.json"
    outputs(oracle, tmp_path, alloc, "--report", report)
    assert json.loads(report.read_text())["allocation"] == alloc


# --------------------------------------------------------------------------------------
# --plot
# --------------------------------------------------------------------------------------


def plot_allocation(n=40):
    weights = []
    for i in range(n):
        chosen = (0, 1, 2, 2, 3, 4, 5, 2)[i % 8]
        weights.append((f"layers.{i}.weight", f"layers.{i}.weight", 4096 * (1 + i % 3), chosen, BASE_CONFIG))
    return allocation(weights, budget=4.5)


def frontier_size(alloc):
    """Lagrangian frontier points: 1 + the lower-hull edges of every curve (these curves are convex)."""
    return 1 + sum(len(w["candidates"]) - 1 for w in alloc["weights"])


def test_plot_parses_with_marks_inside(oracle, tmp_path):
    alloc = plot_allocation()
    svg = tmp_path / "plot.svg"
    outputs(oracle, tmp_path, alloc, "--svg", svg)
    text = svg.read_text()
    assert "<script" not in text and "href" not in text and "url(" not in text
    root = ET.parse(svg).getroot()
    assert root.tag == SVG + "svg"
    assert (root.get("width"), root.get("height")) == ("1000", "700")
    areas = {r.get("id"): r for r in root.iter(SVG + "rect") if r.get("class") == "plot-area"}
    assert set(areas) == {"curve-area", "bars-area"}

    def box(r):
        x, y = float(r.get("x")), float(r.get("y"))
        return x, y, x + float(r.get("width")), y + float(r.get("height"))

    def inside(b, x, y):
        return b[0] - 1e-6 <= x <= b[2] + 1e-6 and b[1] - 1e-6 <= y <= b[3] + 1e-6

    curve_box, bars_box = box(areas["curve-area"]), box(areas["bars-area"])
    bars = [r for r in root.iter(SVG + "rect") if r.get("class") == "bar"]
    assert len(bars) == len(alloc["weights"])
    xs = []
    for r, w in zip(bars, alloc["weights"]):
        x0, y0, x1, y1 = box(r)
        assert inside(bars_box, x0, y0) and inside(bars_box, x1, y1), r.attrib
        nbits = chosen_nbits(w)
        assert r.get("data-nbits") == str(nbits or 0)
        height = y1 - y0
        full = bars_box[3] - bars_box[1]
        assert math.isclose(height, full * (nbits or 8) / 8, abs_tol=0.02), (w["name"], height)
        assert r.find(SVG + "title").text.startswith(w["name"] + ": ")
        xs.append(x0)
    assert xs == sorted(xs)  # model order, left to right

    circles = list(root.iter(SVG + "circle"))
    uniform = [c for c in circles if c.get("class") == "uniform"]
    chosen = [c for c in circles if c.get("class") == "chosen"]
    assert sorted(int(c.get("data-nbits")) for c in uniform) == [2, 3, 4, 6, 8]
    assert len(chosen) == 1
    for c in uniform + chosen:
        assert inside(curve_box, float(c.get("cx")), float(c.get("cy"))), c.attrib
    # The chosen point's x is the allocation's bpw, on the same axis as the uniform points.
    by_bits = {int(c.get("data-nbits")): float(c.get("cx")) for c in uniform}
    per_bit = [(b, 8 * sum(next(x["bytes"] for x in w["candidates"] if x["nbits"] == b) for w in alloc["weights"])
                / alloc["elements"]) for b in (2, 8)]
    (b0, v0), (b1, v1) = per_bit
    px = by_bits[b0] + (alloc["bpw"] - v0) / (v1 - v0) * (by_bits[b1] - by_bits[b0])
    assert abs(float(chosen[0].get("cx")) - px) < 0.05

    frontier = [p for p in root.iter(SVG + "polyline") if p.get("class") == "frontier"]
    assert len(frontier) == 1
    points = [tuple(map(float, p.split(","))) for p in frontier[0].get("points").split()]
    # Cut at the panel's right edge: every point up to 8 bits, none of those beyond.
    assert 1 + sum(len(w["candidates"]) - 2 for w in alloc["weights"]) <= len(points) < frontier_size(alloc)
    for x, y in points:
        assert inside(curve_box, x, y), (x, y)
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    budget = [line for line in root.iter(SVG + "line") if line.get("class") == "budget"]
    assert len(budget) == 1
    assert root.find(f"{SVG}text[@class='title']").text.startswith("Bit allocation, --target-bpw 4.5: 40 weights")


def read_png(path):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB or RGBA PNG, as Chromium writes it."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def test_plot_renders_in_chromium(oracle, tmp_path):
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed (Debian's `chromium` package; scripts/setup installs it)",
                    pytrace=False)
    svg = tmp_path / "plot.svg"
    outputs(oracle, tmp_path, plot_allocation(), "--svg", svg)
    png = tmp_path / "plot.png"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}", "--window-size=1000,700",
           svg.as_uri()]
    env = dict(os.environ, HOME=str(tmp_path))  # Chromium writes its profile under HOME
    proc = subprocess.run(cmd, capture_output=True, timeout=SUBPROCESS_TIMEOUT, env=env)
    assert proc.returncode == 0 and png.exists(), proc.stderr.decode(errors="replace")[-2000:]
    width, height, rows = read_png(png)
    assert (width, height) == (1000, 700)
    pixels = [p for row in rows for p in row]
    non_white = sum(1 for p in pixels if min(p) < 235) / len(pixels)
    colours = {p for p in pixels if min(p) < 235}
    # Bars, frontier, points and text: well over a few percent of the picture, in many colours.
    assert non_white > 0.08, non_white
    assert len(colours) >= 8, len(colours)
    # The bar colours of 2-, 4- and 8-bit weights are there (bars are wide at 40 weights).
    for want in ((0x8C, 0x56, 0x4B), (0x2C, 0xA0, 0x2C), (0x1F, 0x77, 0xB4)):
        assert any(max(abs(a - b) for a, b in zip(p, want)) <= 3 for p in colours), want
