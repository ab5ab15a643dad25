// Call a plugin's tools, resources and prompts natively, under Node, through
// the same exports the host calls. Host imports are served by
// node/host-stub.mjs (installed by `node --import <sdk>/node/register.mjs`):
// logs and progress are recorded, `volumeStats` asks the local filesystem, and
// everything can be replaced with `stubHost`.
//
//   import { callTool, takeLogs } from "moat/testing";
//   const out = callTool("ts_word_count", { text: "a b" });

/// <reference path="./wit/plugin.d.ts" />
import type * as wit from "moat:plugin/types@0.1.2";

import { type Content, type PromptMessage, type ResourceContents, fromWitContent } from "./content.ts";
import { CallError, type WitCallError } from "./errors.ts";
import { type ClientCapabilities, type Identity, type LogLevel, type VolumeStats, activate } from "./host.ts";
import { clearCatalogue, prompts, registered, resources, tools } from "./registry.ts";
import type { JsonObject } from "./schema.ts";

/** One progress report. */
export interface ProgressReport {
  progress: number;
  total?: number;
  message?: string;
}

/** The client's answer to one question, in its WIT form (`{tag: "elicit", val: {...}}`, ...), or a refusal. */
export type StubAnswer = { tag: string; val?: unknown } | { refuse: string };

/** What the stand-in host does; each part is optional. */
export interface HostStub {
  /** Who `caller()` says is calling. */
  caller?: Identity;
  /** Statistics for `volumeStats`; throw a `VolumeStatsError` to fail. Default: the local filesystem. */
  volumeStats?: (path: string) => VolumeStats;
  /** What the client declares (default: everything). */
  capabilities?: ClientCapabilities;
  /** Answers to questions, consumed in order. */
  answers?: StubAnswer[];
}

interface StubState {
  logs: Array<{ level: LogLevel; message: string }>;
  progress: ProgressReport[];
  stub: HostStub;
}

const STATE = Symbol.for("moat.testing.host");

// Natively the stand-in host is always there.
activate();

function state(): StubState {
  const g = globalThis as Record<symbol, StubState | undefined>;
  return (g[STATE] ??= { logs: [], progress: [], stub: {} });
}

/** Replaces the stand-in host's behaviour (and forgets recorded logs and progress). */
export function stubHost(stub: HostStub = {}): void {
  const st = state();
  st.stub = { ...stub, answers: [...(stub.answers ?? [])] };
  st.logs.length = 0;
  st.progress.length = 0;
}

/** The log messages sent since the last call, oldest first. */
export function takeLogs(): Array<{ level: LogLevel; message: string }> {
  return state().logs.splice(0);
}

/** The progress reports sent since the last call. */
export function takeProgress(): ProgressReport[] {
  return state().progress.splice(0);
}

/** A tool's result as a client sees it: the host adds the JSON text item to a structured result. */
export interface ToolResult {
  content: Content[];
  structured?: JsonObject;
}

function unwrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    const err = e as Partial<WitCallError>;
    if (err && typeof err === "object" && typeof err.tag === "string" && typeof err.val === "string") {
      throw new CallError(err.tag, err.val);
    }
    throw e;
  }
}

/** Calls a tool with arguments, as the host would; throws `CallError` on `err`. */
export function callTool(name: string, args: object = {}): ToolResult {
  const out: wit.ToolOutput = unwrap(() => tools.callTool(name, JSON.stringify(args)));
  const content = out.content.map(fromWitContent);
  const structured = out.structured ?? undefined;
  if (structured === undefined) return { content };
  if (content.length === 0) content.push({ type: "text", text: structured });
  return { content, structured: JSON.parse(structured) as JsonObject };
}

/** Calls a tool and returns its structured result. */
export function callStructured(name: string, args: object = {}): JsonObject {
  const out = callTool(name, args);
  if (out.structured === undefined) throw new CallError("failed", `tool \`${name}\` returned no structured content`);
  return out.structured;
}

/** The text of a tool's result: its text items, joined by newlines. */
export function callText(name: string, args: object = {}): string {
  return callTool(name, args)
    .content.map((c) => (c.type === "text" ? c.text : ""))
    .join("\n");
}

/** Reads a resource by URI. */
export function readResource(uri: string): ResourceContents {
  const [r] = unwrap(() => resources.readResource(uri));
  if (!r) throw new CallError("failed", "no contents");
  const mimeType = r.mimeType ?? undefined;
  return r.body.tag === "text" ? { uri: r.uri, mimeType, text: r.body.val } : { uri: r.uri, mimeType, blob: r.body.val };
}

/** Fills in a prompt. */
export function getPrompt(name: string, args: Record<string, string> = {}): { description?: string; messages: PromptMessage[] } {
  const r = unwrap(() => prompts.getPrompt(name, Object.entries(args)));
  const messages = r.messages.map((m) => ({ role: m.role, content: fromWitContent(m.content) }));
  const description = r.description ?? undefined;
  return description === undefined ? { messages } : { description, messages };
}

/** Everything the host would list at load: tools, resources, templates, prompts (WIT form, schemas parsed). */
export function catalogue(): {
  tools: Array<Omit<wit.Tool, "inputSchema" | "outputSchema"> & { inputSchema: JsonObject; outputSchema?: JsonObject }>;
  resources: wit.Resource[];
  templates: wit.ResourceTemplate[];
  prompts: wit.Prompt[];
} {
  return {
    tools: tools.listTools().map((t) => {
      const { inputSchema, outputSchema, ...rest } = t;
      const out = { ...rest, inputSchema: JSON.parse(inputSchema) as JsonObject };
      const os = outputSchema ?? undefined;
      return os === undefined ? out : { ...out, outputSchema: JSON.parse(os) as JsonObject };
    }),
    resources: resources.listResources(),
    templates: resources.listResourceTemplates(),
    prompts: prompts.listPrompts(),
  };
}

/** The input schema of a tool, as the host sees it. */
export function inputSchema(name: string): JsonObject | undefined {
  return catalogue().tools.find((t) => t.name === name)?.inputSchema;
}

/** The output schema of a tool, if it returns structured content. */
export function outputSchema(name: string): JsonObject | undefined {
  return catalogue().tools.find((t) => t.name === name)?.outputSchema;
}

/** Forgets every registered tool, resource and prompt (between tests). */
export function reset(): void {
  clearCatalogue();
  stubHost();
}

export { registered, CallError };
