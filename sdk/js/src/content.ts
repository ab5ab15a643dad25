// What tools, resources and prompts return, and its WIT form.

/// <reference path="./wit/plugin.d.ts" />
import type * as wit from "moat:plugin/types@0.1.2";

/** The contents of a resource: text or bytes. */
export type ResourceContents =
  | { uri: string; mimeType?: string; text: string }
  | { uri: string; mimeType?: string; blob: Uint8Array };

/** One item of a tool result or prompt message. */
export type Content =
  | { type: "text"; text: string }
  | { type: "image"; data: Uint8Array; mimeType: string }
  | { type: "audio"; data: Uint8Array; mimeType: string }
  | { type: "resource"; resource: ResourceContents };

/** Who speaks a prompt message. */
export type Role = "user" | "assistant";

/** One message of a prompt: text or a content item. */
export interface PromptMessage {
  role: Role;
  content: string | Content;
}

/** A text item. */
export function text(text: string): Content {
  return { type: "text", text };
}

/** An image item, e.g. `image(bytes, "image/png")`. */
export function image(data: Uint8Array, mimeType: string): Content {
  return { type: "image", data, mimeType };
}

/** An audio item. */
export function audio(data: Uint8Array, mimeType: string): Content {
  return { type: "audio", data, mimeType };
}

/** An embedded resource: text (a string) or bytes (a `Uint8Array`). */
export function embedded(uri: string, body: string | Uint8Array, mimeType?: string): Content {
  const resource: ResourceContents =
    typeof body === "string" ? { uri, mimeType, text: body } : { uri, mimeType, blob: body };
  return { type: "resource", resource };
}

/** A user message. */
export function user(content: string | Content): PromptMessage {
  return { role: "user", content };
}

/** An assistant message. */
export function assistant(content: string | Content): PromptMessage {
  return { role: "assistant", content };
}

/** @internal */
export function witResourceContents(r: ResourceContents): wit.ResourceContents {
  const body: wit.ResourceBody = "blob" in r ? { tag: "blob", val: r.blob } : { tag: "text", val: r.text };
  return { uri: r.uri, mimeType: r.mimeType ?? undefined, body };
}

/** @internal */
export function witContent(c: string | Content): wit.Content {
  if (typeof c === "string") return { tag: "text", val: c };
  switch (c.type) {
    case "text":
      return { tag: "text", val: c.text };
    case "image":
      return { tag: "image", val: { data: c.data, mimeType: c.mimeType } };
    case "audio":
      return { tag: "audio", val: { data: c.data, mimeType: c.mimeType } };
    case "resource":
      return { tag: "resource", val: witResourceContents(c.resource) };
    default:
      throw new TypeError(`not a content item: ${JSON.stringify(c)}`);
  }
}

/** @internal */
export function fromWitContent(c: wit.Content): Content {
  switch (c.tag) {
    case "text":
      return { type: "text", text: c.val };
    case "image":
      return { type: "image", data: c.val.data, mimeType: c.val.mimeType };
    case "audio":
      return { type: "audio", data: c.val.data, mimeType: c.val.mimeType };
    case "resource": {
      const r = c.val;
      const mimeType = r.mimeType ?? undefined;
      return {
        type: "resource",
        resource: r.body.tag === "text" ? { uri: r.uri, mimeType, text: r.body.val } : { uri: r.uri, mimeType, blob: r.body.val },
      };
    }
  }
}
