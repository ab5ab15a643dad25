// tool(), resource() and prompt() register into one catalogue; `tools`,
// `resources` and `prompts` implement the WIT exports over it.

/// <reference path="./wit/plugin.d.ts" />
import type * as wit from "moat:plugin/types@0.1.2";

import { type Content, type PromptMessage, witContent, witResourceContents } from "./content.ts";
import { InvalidArguments, ToolError, isExpected, toCallError } from "./errors.ts";
import { activate, log } from "./host.ts";
import { reseed } from "./random.ts";
import {
  type AnySchema,
  type InferShape,
  ObjectSchema,
  Schema,
  type Shape,
  asObjectSchema,
  checkAgainst,
  parseArguments,
  rootSchema,
} from "./schema.ts";
import { type Template, type UriVars, isTemplate, matchTemplate, parseTemplate } from "./uri-template.ts";

// ---- definitions ----------------------------------------------------------

/** Hints for clients about what a tool does; each is `false` unless set. */
export interface Annotations {
  /** The tool does not modify its environment. */
  readOnly?: boolean;
  /** The tool may perform destructive updates (meaningful when not read-only). */
  destructive?: boolean;
  /** Calling it twice with the same arguments has no further effect. */
  idempotent?: boolean;
  /** The tool interacts with an open world of external entities. */
  openWorld?: boolean;
}

/** What a tool without an output schema may return. */
export type ToolReturn = string | Content | Content[] | void;

interface ToolBase<I extends Shape> {
  /** 1 to 128 characters of `A-Z a-z 0-9 _ - .`, unique (ignoring case) across the server. */
  name: string;
  /** Human-readable title. */
  title?: string;
  /** What the tool does; shown to the model. */
  description: string;
  /** The arguments: `s.object({...})` or just its `{...}`. */
  input?: ObjectSchema<I> | I;
  annotations?: Annotations;
}

/** A tool returning text or content items. */
export interface TextToolSpec<I extends Shape> extends ToolBase<I> {
  output?: undefined;
  /** Runs the tool (synchronously: see the README's limits). */
  run(args: InferShape<I>): ToolReturn;
}

/** A tool returning a structured result described by `output`. */
export interface StructuredToolSpec<I extends Shape, O extends Shape> extends ToolBase<I> {
  /** The result: `s.object({...})` or just its `{...}`. */
  output: ObjectSchema<O> | O;
  /** Runs the tool; the object returned is the structured result. */
  run(args: InferShape<I>): InferShape<O>;
}

/** A registered tool. */
export interface ToolDef {
  readonly name: string;
  readonly title?: string;
  readonly description: string;
  readonly input: ObjectSchema<Shape>;
  readonly output?: ObjectSchema<Shape>;
  readonly annotations: Required<Annotations>;
  readonly run: (args: never) => unknown;
}

/** What a resource's `read` may return: text, bytes, or either with its own MIME type. */
export type ResourceBody =
  | string
  | Uint8Array
  | { text: string; mimeType?: string }
  | { blob: Uint8Array; mimeType?: string };

/** A resource with a fixed URI, or a family of them when `uri` is a template. */
export interface ResourceSpec<U extends string> {
  /**
   * An absolute URI (`scheme:...`), or a template: `{name}` matches one path
   * segment, `{+name}` anything; the values are passed to `read`.
   */
  uri: U;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  read(vars: UriVars<U>, uri: string): ResourceBody;
}

/** A registered resource or resource template. */
export interface ResourceDef {
  readonly uri: string;
  readonly template?: Template;
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly mimeType?: string;
  readonly read: (vars: Record<string, string>, uri: string) => ResourceBody;
}

/** Prompt arguments: `{ name: "description" }`, or string schemas (`s.string().optional()`, `s.enum([...])`), or `s.object({...})` of them. */
export type PromptArgs = { readonly [name: string]: string | Schema<string, "required" | "optional" | "defaulted"> };

type ArgsShape<A> = A extends ObjectSchema<infer Sh>
  ? Sh
  : { [K in keyof A]: A[K] extends string ? Schema<string> : A[K] extends AnySchema ? A[K] : never };

/** The arguments `render` gets. */
export type PromptArgsOf<A> = ArgsShape<A> extends Shape ? InferShape<ArgsShape<A>> : never;

/** What a prompt's `render` may return. */
export type PromptReturn = string | PromptMessage | PromptMessage[] | { description?: string; messages: PromptMessage[] };

export interface PromptSpec<A extends PromptArgs | ObjectSchema<Shape>> {
  /** 1 to 128 characters of `A-Z a-z 0-9 _ - .`. */
  name: string;
  title?: string;
  description?: string;
  arguments?: A;
  render(args: PromptArgsOf<A>): PromptReturn;
}

/** A registered prompt. */
export interface PromptDef {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly arguments: ObjectSchema<Shape>;
  readonly render: (args: never) => PromptReturn;
}

// ---- the catalogue ----------------------------------------------------------

interface Catalogue {
  tools: ToolDef[];
  resources: ResourceDef[];
  prompts: PromptDef[];
}

// On globalThis, so that a second copy of the SDK in one bundle (a tsconfig
// `paths` entry pointing elsewhere, say) still fills the catalogue exported.
const KEY = Symbol.for("moat.catalogue.v1");
const catalogue: Catalogue = ((globalThis as Record<symbol, Catalogue | undefined>)[KEY] ??= {
  tools: [],
  resources: [],
  prompts: [],
});

/** @internal The catalogue (for `moat/testing`). */
export function registered(): Readonly<Catalogue> {
  return catalogue;
}

/** @internal Empties the catalogue (for tests). */
export function clearCatalogue(): void {
  catalogue.tools.length = 0;
  catalogue.resources.length = 0;
  catalogue.prompts.length = 0;
}

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

function checkName(what: string, name: unknown, taken: readonly { name: string }[]): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new Error(`${what} name ${JSON.stringify(name)} must be 1 to 128 characters of A-Z a-z 0-9 _ - .`);
  }
  const clash = taken.find((t) => t.name.toLowerCase() === name.toLowerCase());
  if (clash) throw new Error(`two ${what}s are named ${JSON.stringify(clash.name)} and ${JSON.stringify(name)} (names must differ in more than case)`);
  return name;
}

/** Registers a tool with a structured result. */
export function tool<I extends Shape = {}, O extends Shape = {}>(spec: StructuredToolSpec<I, O>): ToolDef;
/** Registers a tool returning text or content items. */
export function tool<I extends Shape = {}>(spec: TextToolSpec<I>): ToolDef;
export function tool(spec: TextToolSpec<Shape> | StructuredToolSpec<Shape, Shape>): ToolDef {
  const name = checkName("tool", spec.name, catalogue.tools);
  if (typeof spec.description !== "string" || spec.description === "") throw new Error(`tool \`${name}\`: a description is required`);
  if (typeof spec.run !== "function") throw new Error(`tool \`${name}\`: run must be a function`);
  const a = spec.annotations ?? {};
  const def: ToolDef = {
    name,
    title: spec.title,
    description: spec.description,
    input: asObjectSchema(spec.input),
    output: spec.output === undefined ? undefined : asObjectSchema(spec.output),
    annotations: {
      readOnly: a.readOnly ?? false,
      destructive: a.destructive ?? false,
      idempotent: a.idempotent ?? false,
      openWorld: a.openWorld ?? false,
    },
    run: spec.run as (args: never) => unknown,
  };
  catalogue.tools.push(def);
  return def;
}

/** Registers a resource (fixed URI) or a resource template (`{var}`, `{+var}`). */
export function resource<const U extends string>(spec: ResourceSpec<U>): ResourceDef {
  const uri: string = spec.uri;
  if (typeof uri !== "string" || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri)) throw new Error(`resource URI ${JSON.stringify(uri)} must be absolute (scheme:...)`);
  if (typeof spec.name !== "string" || spec.name === "") throw new Error(`resource ${uri}: a name is required`);
  if (typeof spec.read !== "function") throw new Error(`resource ${uri}: read must be a function`);
  let template: Template | undefined;
  if (isTemplate(uri)) {
    try {
      template = parseTemplate(uri);
    } catch (e) {
      throw new Error(`resource template ${uri} ${(e as Error).message}`);
    }
  }
  if (catalogue.resources.some((r) => r.uri === uri)) throw new Error(`two resources have the URI ${uri}`);
  const def: ResourceDef = {
    uri,
    template,
    name: spec.name,
    title: spec.title,
    description: spec.description,
    mimeType: spec.mimeType,
    read: spec.read as unknown as ResourceDef["read"],
  };
  catalogue.resources.push(def);
  return def;
}

/** Registers a prompt. */
export function prompt<A extends PromptArgs | ObjectSchema<Shape> = {}>(spec: PromptSpec<A>): PromptDef {
  const name = checkName("prompt", spec.name, catalogue.prompts);
  if (typeof spec.render !== "function") throw new Error(`prompt \`${name}\`: render must be a function`);
  let args: ObjectSchema<Shape>;
  if (spec.arguments instanceof ObjectSchema) {
    args = spec.arguments;
  } else {
    const shape: Record<string, AnySchema> = {};
    for (const [key, v] of Object.entries((spec.arguments ?? {}) as PromptArgs)) {
      shape[key] = typeof v === "string" ? new Schema<string>({ kind: "string", presence: "required", description: v }) : v;
    }
    args = asObjectSchema(shape);
  }
  for (const [key, v] of Object.entries(args.shape)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(key)) throw new Error(`prompt \`${name}\`: argument name ${JSON.stringify(key)} must be 1 to 64 characters of A-Z a-z 0-9 _ - .`);
    if (v.def.kind !== "string" && v.def.kind !== "enum") throw new Error(`prompt \`${name}\`: argument \`${key}\` must be a string (prompt arguments are strings)`);
  }
  const def: PromptDef = {
    name,
    title: spec.title,
    description: spec.description,
    arguments: args,
    render: spec.render as (args: never) => PromptReturn,
  };
  catalogue.prompts.push(def);
  return def;
}

// ---- dispatch -----------------------------------------------------------------

function logUnexpected(what: string, e: unknown): void {
  if (isExpected(e)) return;
  try {
    const stack = e instanceof Error && e.stack ? `\n${e.stack}` : "";
    log(`${what} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}${stack}`.slice(0, 8000), "debug");
  } catch {
    // nowhere to log
  }
}

function isThenable(v: unknown): boolean {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

function notAsync(what: string): ToolError {
  return new ToolError(`${what} returned a Promise: moat's JavaScript engine runs plugins synchronously, so run, read and render must not be async`);
}

/** Runs author code and maps any throw to the WIT `err` value (a plain `{tag, val}`, which both jco backends lower as `err`). */
function guard<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    logUnexpected(what, e);
    throw toCallError(e);
  }
}

function parseJsonArguments(json: string): unknown {
  if (json.trim() === "") return {};
  try {
    return JSON.parse(json);
  } catch (e) {
    throw toCallError(new InvalidArguments(`the arguments are not JSON: ${(e as Error).message}`));
  }
}

function toolOutput(t: ToolDef, value: unknown): wit.ToolOutput {
  if (isThenable(value)) throw notAsync(`tool \`${t.name}\``);
  if (t.output) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ToolError(`tool \`${t.name}\` declares an output schema but returned ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`);
    }
    const checked = checkAgainst(t.output, value, (m) => new ToolError(`tool \`${t.name}\` returned a result that does not match its output schema: ${m}`));
    // The host adds the JSON text item for clients without structured output,
    // from these same bytes (as the Rust and Python SDKs leave it to do).
    return { content: [], structured: JSON.stringify(checked) };
  }
  if (value === undefined || value === null) return { content: [] };
  const items = Array.isArray(value) ? value : [value];
  return { content: items.map((c) => witContent(c as string | Content)) };
}

function listTools(): wit.Tool[] {
  activate();
  return catalogue.tools.map((t) => ({
    name: t.name,
    title: t.title ?? undefined,
    description: t.description,
    inputSchema: JSON.stringify(rootSchema(t.input)),
    outputSchema: t.output ? JSON.stringify(rootSchema(t.output)) : undefined,
    annotations: { ...t.annotations },
  }));
}

function callTool(name: string, args: string): wit.ToolOutput {
  activate();
  reseed();
  const t = catalogue.tools.find((x) => x.name === name);
  if (!t) throw { tag: "not-found", val: `no tool named \`${name}\`` } satisfies wit.CallError;
  const parsed = parseJsonArguments(args);
  const input = guard(`tool \`${name}\``, () => parseArguments(t.input, parsed));
  return guard(`tool \`${name}\``, () => toolOutput(t, t.run(input as never)));
}

/** The tool interfaces, as the WIT export `moat:plugin/tools` expects. */
export const tools = { listTools, callTool };

function listResources(): wit.Resource[] {
  activate();
  return catalogue.resources
    .filter((r) => !r.template)
    .map((r) => ({ uri: r.uri, name: r.name, title: r.title ?? undefined, description: r.description ?? undefined, mimeType: r.mimeType ?? undefined }));
}

function listResourceTemplates(): wit.ResourceTemplate[] {
  activate();
  return catalogue.resources
    .filter((r) => r.template)
    .map((r) => ({ uriTemplate: r.uri, name: r.name, title: r.title ?? undefined, description: r.description ?? undefined, mimeType: r.mimeType ?? undefined }));
}

function resourceContents(r: ResourceDef, uri: string, body: ResourceBody): wit.ResourceContents {
  if (isThenable(body)) throw notAsync(`resource ${r.uri}`);
  if (typeof body === "string") return witResourceContents({ uri, mimeType: r.mimeType, text: body });
  if (body instanceof Uint8Array) return witResourceContents({ uri, mimeType: r.mimeType, blob: body });
  if (typeof body === "object" && body !== null) {
    const mimeType = body.mimeType ?? r.mimeType;
    if ("text" in body && typeof body.text === "string") return witResourceContents({ uri, mimeType, text: body.text });
    if ("blob" in body && body.blob instanceof Uint8Array) return witResourceContents({ uri, mimeType, blob: body.blob });
  }
  throw new ToolError(`resource ${r.uri}: read must return a string, a Uint8Array, {text} or {blob}`);
}

function readResource(uri: string): wit.ResourceContents[] {
  activate();
  reseed();
  // Fixed URIs first, then templates in the order registered.
  const fixed = catalogue.resources.find((r) => !r.template && r.uri === uri);
  if (fixed) return guard(`resource ${uri}`, () => [resourceContents(fixed, uri, fixed.read({}, uri))]);
  for (const r of catalogue.resources) {
    if (!r.template) continue;
    const vars = matchTemplate(r.template, uri);
    if (vars) return guard(`resource ${uri}`, () => [resourceContents(r, uri, r.read(vars, uri))]);
  }
  throw { tag: "not-found", val: `no resource at \`${uri}\`` } satisfies wit.CallError;
}

/** The resource interfaces, as the WIT export `moat:plugin/resources` expects. */
export const resources = { listResources, listResourceTemplates, readResource };

function listPrompts(): wit.Prompt[] {
  activate();
  return catalogue.prompts.map((p) => ({
    name: p.name,
    title: p.title ?? undefined,
    description: p.description ?? undefined,
    arguments: Object.entries(p.arguments.shape).map(([name, a]) => ({
      name,
      description: a.def.description ?? undefined,
      required: a.def.presence === "required",
    })),
  }));
}

function promptResult(p: PromptDef, value: PromptReturn): wit.PromptResult {
  if (isThenable(value)) throw notAsync(`prompt \`${p.name}\``);
  const message = (m: PromptMessage): wit.PromptMessage => {
    if (m.role !== "user" && m.role !== "assistant") throw new ToolError(`prompt \`${p.name}\`: a message's role must be "user" or "assistant"`);
    return { role: m.role, content: witContent(m.content) };
  };
  if (typeof value === "string") return { messages: [{ role: "user", content: { tag: "text", val: value } }] };
  if (Array.isArray(value)) return { messages: value.map(message) };
  if (typeof value === "object" && value !== null && "messages" in value) {
    return { description: value.description ?? undefined, messages: value.messages.map(message) };
  }
  if (typeof value === "object" && value !== null && "role" in value) return { messages: [message(value)] };
  throw new ToolError(`prompt \`${p.name}\`: render must return a string, a message, messages or {description, messages}`);
}

function getPrompt(name: string, args: Array<[string, string]>): wit.PromptResult {
  activate();
  reseed();
  const p = catalogue.prompts.find((x) => x.name === name);
  if (!p) throw { tag: "not-found", val: `no prompt named \`${name}\`` } satisfies wit.CallError;
  const obj: Record<string, string> = {};
  for (const [k, v] of args) obj[k] = v;
  const input = guard(`prompt \`${name}\``, () => parseArguments(p.arguments, obj));
  return guard(`prompt \`${name}\``, () => promptResult(p, p.render(input as never)));
}

/** The prompt interfaces, as the WIT export `moat:plugin/prompts` expects. */
export const prompts = { listPrompts, getPrompt };
