// Node module hooks: `moat:plugin/*` (the WIT imports) resolve to the host
// stand-in; `moat` and `moat/testing` resolve to the compiled SDK named by
// MOAT_SDK_DIST (a folder holding index.js and testing.js), when set.
const stub = new URL("./host-stub.mjs", import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier.startsWith("moat:plugin/")) return { url: stub, shortCircuit: true };
  const dist = process.env.MOAT_SDK_DIST;
  if (dist && (specifier === "moat" || specifier === "moat/testing")) {
    const file = specifier === "moat" ? "index.js" : "testing.js";
    return { url: new URL(file, `file://${dist.endsWith("/") ? dist : dist + "/"}`).href, shortCircuit: true };
  }
  return next(specifier, context);
}
