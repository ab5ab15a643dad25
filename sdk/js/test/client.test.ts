import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { ClientError, capabilities, createMessage, elicit, listRoots, s, tool } from "../src/index.ts";
import * as t from "../src/testing.ts";

beforeEach(() => t.reset());

test("elicit, sample and list roots through the client import", () => {
  tool({
    name: "ask",
    description: "Asks.",
    run: () => {
      const caps = capabilities();
      const form = elicit("name", "Your name?", s.object({ name: s.string() }));
      const sampled = createMessage("poem", { messages: [{ role: "user", content: "a poem" }], maxTokens: 50 });
      const roots = listRoots("roots");
      return JSON.stringify({ caps, form, sampled, roots });
    },
  });
  t.stubHost({
    answers: [
      { tag: "elicit", val: { action: "accept", content: '{"name":"Ada"}' } },
      { tag: "sample", val: { role: "assistant", content: { tag: "text", val: "roses" }, model: "m1" } },
      { tag: "roots", val: [{ uri: "file:///src", name: "src" }, { uri: "file:///tmp" }] },
    ],
  });
  assert.deepEqual(JSON.parse(t.callText("ask")), {
    caps: { elicitation: true, sampling: true, roots: true },
    form: { action: "accept", content: { name: "Ada" } },
    sampled: { role: "assistant", content: { type: "text", text: "roses" }, model: "m1" },
    roots: [{ uri: "file:///src", name: "src" }, { uri: "file:///tmp" }],
  });
});

test("a refusal is a ClientError", () => {
  t.stubHost({ answers: [{ refuse: "user closed the form" }] });
  assert.throws(() => elicit("k", "m", {}), (e: unknown) => e instanceof ClientError && /user closed the form/.test((e as Error).message));
});
