import assert from "node:assert/strict";
import { test } from "node:test";

import { matchTemplate, parseTemplate } from "../src/uri-template.ts";

const vars = (template: string, uri: string): Record<string, string> | undefined => matchTemplate(parseTemplate(template), uri);

test("segment and greedy variables, as the host routes", () => {
  assert.deepEqual(vars("disk://{host}/usage", "disk://web1/usage"), { host: "web1" });
  assert.equal(vars("disk://{host}/usage", "disk://a/b/usage"), undefined);
  assert.deepEqual(vars("file://{+path}", "file:///var/log"), { path: "/var/log" });
  assert.equal(vars("x://{a}", "y://b"), undefined);
  assert.equal(vars("x://{a}", "x://"), undefined, "a variable takes at least one character");
  assert.deepEqual(vars("file://{+path}.txt", "file://a.txt.txt"), { path: "a.txt" }, "longest run after which the rest matches");
  assert.deepEqual(vars("r://{a}-{b}", "r://x-y-z"), { a: "x-y", b: "z" });
  assert.deepEqual(vars("r://{a}/{+b}", "r://x/y/z"), { a: "x", b: "y/z" });
  assert.deepEqual(vars("plain://x", "plain://x"), {});
});

test("templates moat refuses are refused here too", () => {
  assert.throws(() => parseTemplate("x://{a,b}"), /not supported/);
  assert.throws(() => parseTemplate("x://{?q}"), /not supported/);
  assert.throws(() => parseTemplate("x://{a"), /without a `}`/);
  assert.throws(() => parseTemplate("x://a}"), /without a `{`/);
  assert.throws(() => parseTemplate("x://a b/{c}"), /cannot hold unescaped/);
  assert.throws(() => parseTemplate("x://{a}/{a}"), /twice/);
});
