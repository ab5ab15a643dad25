// Errors a tool, resource or prompt may throw, and how each reaches the host.

/** The three ways a call can fail, as the WIT `call-error` names them. */
export type CallErrorKind = "failed" | "invalid-arguments" | "not-found";

// A brand instead of `instanceof`, so errors still map if two copies of the SDK
// end up in one bundle.
const KIND = Symbol.for("moat.call-error-kind");

function brand(e: Error, kind: CallErrorKind): void {
  Object.defineProperty(e, KIND, { value: kind, enumerable: false });
}

/** The tool ran and failed: the message is shown to the model as a tool error. */
export class ToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ToolError";
    brand(this, "failed");
  }
}

/** The arguments were rejected: the message should name the field. */
export class InvalidArguments extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidArguments";
    brand(this, "invalid-arguments");
  }
}

/** No such thing: e.g. a resource template matched but names nothing that exists. */
export class NotFound extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotFound";
    brand(this, "not-found");
  }
}

/** A failed call as the SDK's test helpers report it (`moat/testing`). */
export class CallError extends Error {
  readonly kind: CallErrorKind;
  constructor(kind: CallErrorKind, message: string) {
    super(message);
    this.name = "CallError";
    this.kind = kind;
    brand(this, kind);
  }
}

/** The WIT `call-error` value: what the export throws to return `err(...)`. */
export interface WitCallError {
  tag: CallErrorKind;
  val: string;
}

/**
 * Maps anything thrown by author code to a `call-error`: `ToolError` is
 * `failed(message)`, `InvalidArguments` is `invalid-arguments(message)`,
 * `NotFound` is `not-found(message)`, any other `Error` is
 * `failed("Name: message")`, and any other value is `failed(String(value))`.
 */
export function toCallError(e: unknown): WitCallError {
  if (e instanceof Error) {
    const kind = (e as unknown as Record<symbol, unknown>)[KIND] as CallErrorKind | undefined;
    if (kind !== undefined) return { tag: kind, val: e.message };
    const name = e.name || "Error";
    return { tag: "failed", val: e.message ? `${name}: ${e.message}` : name };
  }
  if (isWitCallError(e)) return { tag: e.tag, val: e.val };
  return { tag: "failed", val: safeString(e) };
}

/** Whether `e` is one of the SDK's errors (thrown on purpose, not a bug). */
export function isExpected(e: unknown): boolean {
  return e instanceof Error && (e as unknown as Record<symbol, unknown>)[KIND] !== undefined;
}

function isWitCallError(e: unknown): e is WitCallError {
  if (typeof e !== "object" || e === null) return false;
  const { tag, val } = e as { tag?: unknown; val?: unknown };
  return (tag === "failed" || tag === "invalid-arguments" || tag === "not-found") && typeof val === "string";
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return "an exception that cannot be shown";
  }
}
