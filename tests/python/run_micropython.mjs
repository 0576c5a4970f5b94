// SPDX-License-Identifier: Apache-2.0
// Runs the Python reference and the vector runner on real MicroPython (the WebAssembly port
// from npm, under Node.js): proves the reference needs nothing CPython-only.
//
//   node run_micropython.mjs <micropython.mjs> <repo root>
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modulePath, root] = process.argv.slice(2);
if (!modulePath || !root) {
  console.error("usage: node run_micropython.mjs <micropython.mjs> <repo root>");
  process.exit(2);
}
const { loadMicroPython } = await import(pathToFileURL(modulePath).href);
let output = "";
const mp = await loadMicroPython({
  stdout: (line) => { output += line + "\n"; console.log(line); },
  stderr: (line) => console.error(line),
});
mp.FS.mkdir("/lib");
mp.FS.writeFile("/lib/securemqtt_envelope.py", readFileSync(join(root, "examples/python/securemqtt_envelope.py")));
mp.FS.writeFile("/lib/vector_runner.py", readFileSync(join(root, "tests/python/vector_runner.py")));
mp.FS.writeFile("/vectors.json", readFileSync(join(root, "tests/vectors/envelope-v1.json")));

try {
  mp.runPython(`
import sys, json
sys.path.insert(0, "/lib")
import securemqtt_envelope as sm
import vector_runner
print("implementation:", sys.implementation.name, sys.implementation.version)
with open("/vectors.json") as f:
    doc = json.load(f)
failures = []
modes = [False] + ([True] if sm._hmac is not None else [])
for use_module in modes:
    sm.USE_HMAC_MODULE = use_module
    for failure in vector_runner.run(sm, doc):
        failures.append(("hmac module: " if use_module else "own HMAC: ") + failure)
for failure in failures:
    print("FAIL", failure)
print("micropython: %d vectors and %d sequences x %d HMAC implementations: %d failures" % (len(doc["vectors"]), len(doc["sequences"]), len(modes), len(failures)))
`);
} catch (e) {
  console.error("MicroPython raised:", e.message ?? e);
  process.exit(1);
}
if (!/^implementation: micropython/m.test(output) || !/: 0 failures$/m.test(output)) process.exit(1);
