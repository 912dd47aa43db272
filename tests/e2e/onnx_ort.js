// onnx_ort.js MODEL.onnx DIR: runs an exported sequence model in onnxruntime
// (its npm package, onnxruntime-node) on DIR/x.bin (float32, shape in
// DIR/shape.json) and DIR/lengths.bin (int32), 500 rows at a time, and
// writes the output `probabilities` to DIR/out.bin (float32).  Used by
// tests/e2e/test_onnx_seq.sh, which compares it with `caviar predict`.
const fs = require("fs");
const path = require("path");
const ort = require("onnxruntime-node");

async function main() {
    const [model, dir] = process.argv.slice(2);
    const shape = JSON.parse(fs.readFileSync(path.join(dir, "shape.json")));
    const xb = fs.readFileSync(path.join(dir, "x.bin"));
    const lb = fs.readFileSync(path.join(dir, "lengths.bin"));
    const x = new Float32Array(xb.buffer, xb.byteOffset, xb.length / 4);
    const len = new Int32Array(lb.buffer, lb.byteOffset, lb.length / 4);
    const n = shape[0], per = x.length / n;
    const session = await ort.InferenceSession.create(model);
    const out = fs.openSync(path.join(dir, "out.bin"), "w");
    for (let i = 0; i < n; i += 500) {
        const k = Math.min(500, n - i);
        const feeds = {
            input: new ort.Tensor("float32", x.slice(i * per, (i + k) * per), [k, ...shape.slice(1)]),
            lengths: new ort.Tensor("int32", len.slice(i, i + k), [k]),
        };
        const p = (await session.run(feeds)).probabilities.data;
        fs.writeSync(out, Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    }
    fs.closeSync(out);
}
main().catch((e) => {
    console.error(e.message || e);
    process.exit(1);
});
