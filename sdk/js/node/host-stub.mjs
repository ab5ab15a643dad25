// A stand-in for the moat host under Node: every `moat:plugin/*` import the SDK
// makes resolves here (see hooks.mjs). Behaviour is set with `stubHost` from
// `moat/testing`, through a shared object on globalThis.
import { statfsSync } from "node:fs";

const STATE = Symbol.for("moat.testing.host");

function state() {
  return (globalThis[STATE] ??= { logs: [], progress: [], stub: {} });
}

/** An `err` from an import: jco throws an Error carrying the WIT value as `payload`. */
function err(payload) {
  const e = new Error(typeof payload === "string" ? payload : JSON.stringify(payload));
  e.payload = payload;
  return e;
}

// moat:plugin/log
export function log(level, message) {
  state().logs.push({ level, message });
}

// moat:plugin/progress
export function report(progress, total, message) {
  const r = { progress };
  if (total !== undefined && total !== null) r.total = total;
  if (message !== undefined && message !== null) r.message = message;
  state().progress.push(r);
}

// moat:plugin/volume-stats
export function stat(path) {
  const custom = state().stub.volumeStats;
  if (custom) {
    let s;
    try {
      s = custom(path);
    } catch (e) {
      if (e && typeof e.kind === "string") throw err({ tag: e.kind, val: e.detail ?? e.message });
      throw e;
    }
    return { totalBytes: BigInt(s.totalBytes), freeBytes: BigInt(s.freeBytes), availableBytes: BigInt(s.availableBytes) };
  }
  let s;
  try {
    s = statfsSync(path, { bigint: true });
  } catch (e) {
    if (e && e.code === "ENOENT") throw err({ tag: "not-found", val: path });
    throw err({ tag: "io", val: `${path}: ${e && e.message}` });
  }
  return { totalBytes: s.blocks * s.bsize, freeBytes: s.bfree * s.bsize, availableBytes: s.bavail * s.bsize };
}

// moat:plugin/caller
export function identity() {
  return state().stub.caller;
}

// moat:plugin/client
export function capabilities() {
  return state().stub.capabilities ?? { elicitation: true, sampling: true, roots: true };
}

export function ask(questions) {
  const answers = (state().stub.answers ??= []);
  return questions.map(() => {
    const a = answers.shift();
    if (a === undefined) throw err("no client answer queued (moat/testing: stubHost({ answers: [...] }))");
    if ("refuse" in a) throw err(a.refuse);
    return a;
  });
}
