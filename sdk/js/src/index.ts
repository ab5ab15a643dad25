// moat: write MCP tools, resources and prompts in TypeScript; `moat build app.ts`
// turns the module into a WebAssembly component that moat serves.
//
//   import { tool, s } from "moat";
//
//   tool({
//     name: "greet",
//     description: "Greets someone by name.",
//     input: { name: s.string().describe("Who to greet.") },
//     run: ({ name }) => `Hello, ${name}!`,
//   });

export { s, Schema, StringSchema, NumberSchema, ArraySchema, ObjectSchema } from "./schema.ts";
export type { Infer, InferShape, Json, JsonObject, Presence, Shape, AnySchema } from "./schema.ts";

export { tool, resource, prompt, tools, resources, prompts } from "./registry.ts";
export type {
  Annotations,
  PromptArgs,
  PromptArgsOf,
  PromptDef,
  PromptReturn,
  PromptSpec,
  ResourceBody,
  ResourceDef,
  ResourceSpec,
  StructuredToolSpec,
  TextToolSpec,
  ToolDef,
  ToolReturn,
} from "./registry.ts";
export type { UriVars } from "./uri-template.ts";

export { ToolError, InvalidArguments, NotFound, CallError } from "./errors.ts";
export type { CallErrorKind } from "./errors.ts";

export { text, image, audio, embedded, user, assistant } from "./content.ts";
export type { Content, PromptMessage, ResourceContents, Role } from "./content.ts";

export {
  log,
  progress,
  volumeStats,
  VolumeStatsError,
  caller,
  capabilities,
  ask,
  elicit,
  createMessage,
  listRoots,
  ClientError,
} from "./host.ts";
export type {
  Answer,
  ClientCapabilities,
  Elicitation,
  Identity,
  LogLevel,
  Question,
  Root,
  Sampled,
  SamplingRequest,
  VolumeStats,
} from "./host.ts";
