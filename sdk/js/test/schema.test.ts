import assert from "node:assert/strict";
import { test } from "node:test";

import { InvalidArguments, s } from "../src/index.ts";
import { parseArguments, rootSchema } from "../src/schema.ts";

test("scalars emit their JSON Schema types", () => {
  assert.deepEqual(s.string().toJSON(), { type: "string" });
  assert.deepEqual(s.integer().toJSON(), { type: "integer" });
  assert.deepEqual(s.number().toJSON(), { type: "number" });
  assert.deepEqual(s.boolean().toJSON(), { type: "boolean" });
  assert.deepEqual(s.enum(["a", "b"]).toJSON(), { type: "string", enum: ["a", "b"] });
  assert.deepEqual(s.array(s.integer()).toJSON(), { type: "array", items: { type: "integer" } });
});

test("descriptions, defaults and bounds", () => {
  assert.deepEqual(s.string().describe("Who.").toJSON(), { type: "string", description: "Who." });
  assert.deepEqual(s.integer().min(1).max(10).default(3).describe("n").toJSON(), {
    type: "integer",
    description: "n",
    default: 3,
    minimum: 1,
    maximum: 10,
  });
  assert.deepEqual(s.string().min(1).max(5).toJSON(), { type: "string", minLength: 1, maxLength: 5 });
  assert.deepEqual(s.array(s.string()).min(1).toJSON(), { type: "array", items: { type: "string" }, minItems: 1 });
  // Modifiers keep each other: describe after default, default after describe.
  assert.deepEqual(s.boolean().describe("x").default(false).toJSON(), { type: "boolean", description: "x", default: false });
});

test("objects: required unless optional or defaulted, no other properties", () => {
  const o = s.object({
    text: s.string().describe("The text."),
    unique: s.boolean().default(false),
    mode: s.enum(["fast", "exact"]).optional(),
    tags: s.array(s.string()).optional(),
    nested: s.object({ a: s.integer() }),
  });
  assert.deepEqual(rootSchema(o), {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    properties: {
      text: { type: "string", description: "The text." },
      unique: { type: "boolean", default: false },
      mode: { type: "string", enum: ["fast", "exact"] },
      tags: { type: "array", items: { type: "string" } },
      nested: { type: "object", properties: { a: { type: "integer" } }, required: ["a"], additionalProperties: false },
    },
    required: ["text", "nested"],
    additionalProperties: false,
  });
  assert.deepEqual(s.object({}).toJSON(), { type: "object", properties: {}, additionalProperties: false });
});

test("a default must fit its schema", () => {
  assert.throws(() => s.integer().min(5).default(1), /less than 5/);
  assert.throws(() => s.enum(["a"]).default("b" as "a"), /one of "a"/);
  assert.throws(() => s.enum([] as unknown as [string]), /one or more distinct/);
});

test("arguments are checked and defaults filled in", () => {
  const o = s.object({ text: s.string(), unique: s.boolean().default(false), n: s.integer().optional() });
  assert.deepEqual(parseArguments(o, { text: "a" }), { text: "a", unique: false });
  assert.deepEqual(parseArguments(o, { text: "a", unique: true, n: 2 }), { text: "a", unique: true, n: 2 });
  const bad = (v: unknown, re: RegExp): void =>
    assert.throws(() => parseArguments(o, v), (e: unknown) => e instanceof InvalidArguments && re.test((e as Error).message));
  bad({}, /`text`: missing required field/);
  bad({ text: 5 }, /`text`: expected a string, got an integer/);
  bad({ text: "a", unique: "yes" }, /`unique`: expected a boolean, got a string/);
  bad({ text: "a", n: 1.5 }, /`n`: expected an integer, got a number/);
  bad({ text: "a", extra: 1 }, /`extra`: unknown field/);
  bad([], /expected an object, got an array/);
  const deep = s.object({ rows: s.array(s.object({ id: s.integer() })) });
  assert.throws(() => parseArguments(deep, { rows: [{ id: 1 }, { id: "x" }] }), /`rows\[1\]\.id`: expected an integer/);
});

test("defaults are copied, not shared", () => {
  const o = s.object({ tags: s.array(s.string()).default(["a"]) });
  const first = parseArguments(o, {}) as { tags: string[] };
  first.tags.push("b");
  assert.deepEqual(parseArguments(o, {}), { tags: ["a"] });
});
