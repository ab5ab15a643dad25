// `ts_probe`: tools that each try one thing the sandbox must stop or contain,
// in a TypeScript component (QuickJS). Test-only.
import { s, tool } from "moat";

tool({
  name: "ts_probe_spin",
  description: "Loops forever: the host's deadline must stop it.",
  run() {
    let n = 0;
    for (;;) n += 1;
  },
});

tool({
  name: "ts_probe_alloc",
  description: "Allocates and touches memory, then returns how many MiB it held.",
  input: { mb: s.integer().min(0).describe("How many MiB to allocate.") },
  run({ mb }) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < mb; i++) {
      const chunk = new Uint8Array(1 << 20);
      for (let j = 0; j < chunk.length; j += 4096) chunk[j] = 1;
      chunks.push(chunk);
    }
    return `${chunks.length}`;
  },
});

tool({
  name: "ts_probe_throw",
  description: "Throws a TypeError with the given message.",
  input: { message: s.string().describe("The error's message.") },
  run({ message }) {
    throw new TypeError(message);
  },
});

tool({
  name: "ts_probe_recurse",
  description: "Recurses without end: the engine's stack limit or the host's must end it.",
  run() {
    const down = (n: number): number => down(n + 1) + 1;
    return `${down(0)}`;
  },
});
