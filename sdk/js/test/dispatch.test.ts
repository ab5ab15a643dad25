import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import {
  InvalidArguments,
  NotFound,
  ToolError,
  VolumeStatsError,
  caller,
  embedded,
  image,
  log,
  progress,
  prompt,
  prompts,
  resource,
  resources,
  s,
  text,
  tool,
  tools,
  user,
  volumeStats,
  assistant,
} from "../src/index.ts";
import * as t from "../src/testing.ts";

beforeEach(() => t.reset());

/** What the raw export threw (the WIT `err` value). */
function witErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

test("list-tools: names, titles, schemas and annotations", () => {
  tool({
    name: "greet",
    title: "Greeter",
    description: "Greets.",
    input: { name: s.string().describe("Who.") },
    annotations: { readOnly: true, openWorld: true },
    run: ({ name }) => `Hello, ${name}!`,
  });
  tool({ name: "nothing", description: "No arguments.", run: () => "ok" });
  const [greet, nothing] = tools.listTools();
  assert.equal(greet!.name, "greet");
  assert.equal(greet!.title, "Greeter");
  assert.deepEqual(greet!.annotations, { readOnly: true, destructive: false, idempotent: false, openWorld: true });
  assert.deepEqual(JSON.parse(greet!.inputSchema), {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    properties: { name: { type: "string", description: "Who." } },
    required: ["name"],
    additionalProperties: false,
  });
  assert.equal(greet!.outputSchema, undefined);
  assert.deepEqual(JSON.parse(nothing!.inputSchema).properties, {});
  assert.equal(t.callText("greet", { name: "Ada" }), "Hello, Ada!");
});

test("structured results: checked against the output schema, undefined fields left out", () => {
  tool({
    name: "count",
    description: "Counts.",
    input: s.object({ n: s.integer(), more: s.boolean().default(false) }),
    output: { n: s.integer(), extra: s.integer().optional() },
    run: ({ n, more }) => ({ n, extra: more ? n + 1 : undefined }),
  });
  assert.deepEqual(JSON.parse(tools.listTools()[0]!.outputSchema!).required, ["n"]);
  const raw = tools.callTool("count", '{"n":2}');
  assert.deepEqual(raw.content, [], "the host adds the JSON text item");
  assert.equal(raw.structured, '{"n":2}');
  assert.deepEqual(t.callTool("count", { n: 2, more: true }), {
    content: [{ type: "text", text: '{"n":2,"extra":3}' }],
    structured: { n: 2, extra: 3 },
  });
});

test("a result that breaks the output schema is a tool error naming the field", () => {
  tool({ name: "bad", description: "Bad.", output: { n: s.integer() }, run: () => ({ n: "x" }) as unknown as { n: number } });
  assert.deepEqual(witErr(() => tools.callTool("bad", "{}")), {
    tag: "failed",
    val: "tool `bad` returned a result that does not match its output schema: `n`: expected an integer, got a string",
  });
});

test("errors map to call-error cases", () => {
  tool({
    name: "fail",
    description: "Fails as asked.",
    input: { how: s.enum(["tool", "args", "missing", "type", "string", "plain"]) },
    run: ({ how }) => {
      if (how === "tool") throw new ToolError("disk on fire");
      if (how === "args") throw new InvalidArguments("`path` must be absolute");
      if (how === "missing") throw new NotFound("no such host");
      if (how === "type") throw new TypeError("x is not a function");
      if (how === "string") throw "just a string";
      throw new Error("");
    },
  });
  const call = (how: string): unknown => witErr(() => tools.callTool("fail", JSON.stringify({ how })));
  assert.deepEqual(call("tool"), { tag: "failed", val: "disk on fire" });
  assert.deepEqual(call("args"), { tag: "invalid-arguments", val: "`path` must be absolute" });
  assert.deepEqual(call("missing"), { tag: "not-found", val: "no such host" });
  assert.deepEqual(call("type"), { tag: "failed", val: "TypeError: x is not a function" });
  assert.deepEqual(call("string"), { tag: "failed", val: "just a string" });
  assert.deepEqual(call("plain"), { tag: "failed", val: "Error" });
  // Unexpected errors are logged at debug with their stack; thrown SDK errors are not.
  const logs = t.takeLogs();
  assert.ok(logs.some((l) => l.level === "debug" && l.message.startsWith("tool `fail` threw TypeError: x is not a function")));
  assert.ok(!logs.some((l) => l.message.includes("disk on fire")));
  // Through the test helper: a CallError with the kind.
  assert.throws(() => t.callTool("fail", { how: "args" }), (e: unknown) => e instanceof t.CallError && e.kind === "invalid-arguments");
});

test("unknown names, bad JSON and bad arguments", () => {
  tool({ name: "x", description: "X.", input: { n: s.integer() }, run: () => "" });
  assert.deepEqual(witErr(() => tools.callTool("nope", "{}")), { tag: "not-found", val: "no tool named `nope`" });
  assert.deepEqual((witErr(() => tools.callTool("x", "{")) as { tag: string }).tag, "invalid-arguments");
  assert.deepEqual(witErr(() => tools.callTool("x", '{"n":"1"}')), { tag: "invalid-arguments", val: "`n`: expected an integer, got a string" });
  assert.deepEqual(witErr(() => tools.callTool("x", "")), { tag: "invalid-arguments", val: "`n`: missing required field" });
  assert.deepEqual(witErr(() => resources.readResource("a:b")), { tag: "not-found", val: "no resource at `a:b`" });
  assert.deepEqual(witErr(() => prompts.getPrompt("p", [])), { tag: "not-found", val: "no prompt named `p`" });
});

test("async run is refused with a clear error (the engine is synchronous)", () => {
  tool({ name: "later", description: "Async.", run: (async () => "x") as unknown as () => string });
  assert.deepEqual(witErr(() => tools.callTool("later", "{}")), {
    tag: "failed",
    val: "tool `later` returned a Promise: moat's JavaScript engine runs plugins synchronously, so run, read and render must not be async",
  });
});

test("content items", () => {
  tool({
    name: "media",
    description: "Media.",
    run: () => [text("hi"), image(new Uint8Array([1, 2]), "image/png"), embedded("file:///a.txt", "body", "text/plain")],
  });
  assert.deepEqual(tools.callTool("media", "{}").content, [
    { tag: "text", val: "hi" },
    { tag: "image", val: { data: new Uint8Array([1, 2]), mimeType: "image/png" } },
    { tag: "resource", val: { uri: "file:///a.txt", mimeType: "text/plain", body: { tag: "text", val: "body" } } },
  ]);
  tool({ name: "silent", description: "Nothing.", run: () => {} });
  assert.deepEqual(tools.callTool("silent", "{}"), { content: [] });
});

test("registration refuses bad and clashing names", () => {
  tool({ name: "Same", description: "d", run: () => "" });
  assert.throws(() => tool({ name: "same", description: "d", run: () => "" }), /differ in more than case/);
  assert.throws(() => tool({ name: "has space", description: "d", run: () => "" }), /1 to 128 characters/);
  assert.throws(() => tool({ name: "nodesc", description: "", run: () => "" }), /description is required/);
  assert.throws(() => resource({ uri: "relative/path", name: "r", read: () => "" }), /must be absolute/);
  assert.throws(() => resource({ uri: "x://{a,b}", name: "r", read: () => "" }), /not supported/);
  assert.throws(() => prompt({ name: "p", arguments: { n: s.integer() as never }, render: () => "" }), /must be a string/);
});

test("resources: fixed URIs first, then templates with their variables", () => {
  resource({ uri: "config://limits", name: "limits", mimeType: "application/json", read: () => '{"a":1}' });
  resource({ uri: "file://{+path}", name: "file", description: "Any file.", read: ({ path }) => ({ text: `file ${path}`, mimeType: "text/plain" }) });
  resource({ uri: "disk://{host}/usage", name: "usage", read: ({ host }, uri) => new Uint8Array([host.length, uri.length]) });
  resource({ uri: "missing://{id}", name: "missing", read: ({ id }) => { throw new NotFound(`no item ${id}`); } });
  assert.deepEqual(resources.listResources(), [{ uri: "config://limits", name: "limits", title: undefined, description: undefined, mimeType: "application/json" }]);
  assert.deepEqual(
    resources.listResourceTemplates().map((r) => r.uriTemplate),
    ["file://{+path}", "disk://{host}/usage", "missing://{id}"],
  );
  assert.deepEqual(t.readResource("config://limits"), { uri: "config://limits", mimeType: "application/json", text: '{"a":1}' });
  assert.deepEqual(t.readResource("file:///var/log/x"), { uri: "file:///var/log/x", mimeType: "text/plain", text: "file /var/log/x" });
  assert.deepEqual(t.readResource("disk://web1/usage"), { uri: "disk://web1/usage", mimeType: undefined, blob: new Uint8Array([4, 17]) });
  assert.deepEqual(witErr(() => resources.readResource("disk://a/b/usage")), { tag: "not-found", val: "no resource at `disk://a/b/usage`" });
  assert.deepEqual(witErr(() => resources.readResource("missing://7")), { tag: "not-found", val: "no item 7" });
});

test("prompts: description maps, string schemas, messages", () => {
  prompt({ name: "simple", description: "Simple.", arguments: { host: "The host." }, render: ({ host }) => `Check ${host}.` });
  prompt({
    name: "rich",
    arguments: { topic: s.string().describe("Topic."), tone: s.enum(["dry", "warm"]).default("dry"), extra: s.string().optional() },
    render: ({ topic, tone, extra }) => ({
      description: `About ${topic}`,
      messages: [user(`Write about ${topic}, ${tone}${extra ? ` (${extra})` : ""}.`), assistant("Sure.")],
    }),
  });
  assert.deepEqual(prompts.listPrompts(), [
    { name: "simple", title: undefined, description: "Simple.", arguments: [{ name: "host", description: "The host.", required: true }] },
    {
      name: "rich",
      title: undefined,
      description: undefined,
      arguments: [
        { name: "topic", description: "Topic.", required: true },
        { name: "tone", description: undefined, required: false },
        { name: "extra", description: undefined, required: false },
      ],
    },
  ]);
  assert.deepEqual(t.getPrompt("simple", { host: "web1" }), { messages: [{ role: "user", content: { type: "text", text: "Check web1." } }] });
  assert.deepEqual(t.getPrompt("rich", { topic: "tea" }), {
    description: "About tea",
    messages: [
      { role: "user", content: { type: "text", text: "Write about tea, dry." } },
      { role: "assistant", content: { type: "text", text: "Sure." } },
    ],
  });
  assert.deepEqual(witErr(() => prompts.getPrompt("simple", [])), { tag: "invalid-arguments", val: "`host`: missing required field" });
  assert.deepEqual(witErr(() => prompts.getPrompt("rich", [["topic", "t"], ["tone", "loud"]])), {
    tag: "invalid-arguments",
    val: '`tone`: expected one of "dry", "warm", got "loud"',
  });
});

test("host imports: log, progress, caller, volumeStats (stubbed)", () => {
  tool({
    name: "host",
    description: "Uses the host.",
    run: () => {
      log("starting");
      log("careful", "warning");
      progress(1, 2, "half");
      progress(2);
      const who = caller();
      const st = volumeStats("/data");
      return `${who?.subject ?? "anonymous"} ${st.totalBytes} ${st.availableBytes}`;
    },
  });
  t.stubHost({
    caller: { subject: "ada", scopes: ["tools:read"] },
    volumeStats: (path) => {
      if (path !== "/data") throw new VolumeStatsError("not-granted", path);
      return { totalBytes: 100, freeBytes: 50, availableBytes: 40 };
    },
  });
  assert.equal(t.callText("host"), "ada 100 40");
  assert.deepEqual(t.takeLogs(), [
    { level: "info", message: "starting" },
    { level: "warning", message: "careful" },
  ]);
  assert.deepEqual(t.takeProgress(), [{ progress: 1, total: 2, message: "half" }, { progress: 2 }]);
  t.stubHost({ volumeStats: (p) => { throw new VolumeStatsError("not-granted", p); } });
  assert.deepEqual(witErr(() => tools.callTool("host", "{}")), { tag: "failed", val: "VolumeStatsError: not granted: /data" });
  assert.equal(caller(), undefined);
});

test("volumeStats natively asks the local filesystem", () => {
  const st = volumeStats("/");
  assert.ok(st.totalBytes > 0 && st.totalBytes >= st.freeBytes && st.freeBytes >= st.availableBytes);
  assert.throws(() => volumeStats("/no/such/dir"), (e: unknown) => e instanceof VolumeStatsError && e.kind === "not-found");
});

test("Math.random is reseeded at each call (a snapshot would repeat it otherwise)", () => {
  tool({ name: "roll", description: "Random.", run: () => String(Math.random()) });
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const x = Number(t.callText("roll"));
    assert.ok(x >= 0 && x < 1, `${x} in [0, 1)`);
    seen.add(String(x));
  }
  assert.equal(seen.size, 20);
});
