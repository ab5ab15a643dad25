// The schema builder: `s.string()`, `s.object({...})`, ... Each schema knows its
// TypeScript type (see `Infer`), emits JSON Schema 2020-12 and checks values.

import { InvalidArguments } from "./errors.ts";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A JSON object. */
export type JsonObject = { [key: string]: Json };

/**
 * Whether a property must be present: `"required"`, `"optional"` (may be left
 * out; the field is `undefined` then) or `"defaulted"` (may be left out; the
 * default is filled in before `run` sees it).
 */
export type Presence = "required" | "optional" | "defaulted";

type Kind = "string" | "integer" | "number" | "boolean" | "enum" | "array" | "object";

interface Def {
  readonly kind: Kind;
  readonly presence: Presence;
  readonly description?: string;
  readonly default?: Json;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly values?: readonly string[];
  readonly items?: AnySchema;
  readonly shape?: Shape;
}

/** A schema of values of type `T`, with a presence `P` inside an object. */
export class Schema<T, P extends Presence = "required"> {
  /** Type-level only: the values this schema admits. */
  declare readonly __type: T;
  /** Type-level only: whether the property may be left out. */
  declare readonly __presence: P;

  /** @internal */
  readonly def: Def;

  /** @internal Use the `s` builders. */
  constructor(def: Def) {
    this.def = def;
  }

  /** @internal A copy with some of the definition changed. */
  protected with(change: Partial<Def>): this {
    const Ctor = this.constructor as new (def: Def) => this;
    return new Ctor({ ...this.def, ...change });
  }

  /** The property may be left out (it is `undefined` then). */
  optional(): Schema<T, "optional"> {
    return new Schema<T, "optional">({ ...this.def, presence: "optional", default: undefined });
  }

  /** The property may be left out; `value` is filled in. */
  default(value: T): Schema<T, "defaulted"> {
    const json = toJsonValue(value, "the default");
    checkValue(this.def, json, "the default", (m) => new Error(`schema: ${m}`));
    return new Schema<T, "defaulted">({ ...this.def, presence: "defaulted", default: json });
  }

  /** A description, shown to the model. */
  describe(text: string): this {
    return this.with({ description: text });
  }

  /** The JSON Schema of this value. */
  toJSON(): JsonObject {
    return emit(this.def);
  }
}

/** Any schema. */
export type AnySchema = Schema<unknown, Presence>;
/** The properties of an object schema. */
export type Shape = { readonly [key: string]: AnySchema };

/** The TypeScript type of the values a schema admits. */
export type Infer<S> = S extends Schema<infer T, Presence> ? T : S extends Shape ? InferShape<S> : never;

type OptionalKeys<Sh extends Shape> = {
  [K in keyof Sh]: Sh[K] extends Schema<unknown, "optional"> ? K : never;
}[keyof Sh];

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The object type of a shape: optional properties become `key?: T`. */
export type InferShape<Sh extends Shape> = Simplify<
  { -readonly [K in Exclude<keyof Sh, OptionalKeys<Sh>>]: Infer<Sh[K]> } & {
    -readonly [K in OptionalKeys<Sh>]?: Infer<Sh[K]>;
  }
>;

export class StringSchema extends Schema<string> {
  /** At least `n` characters (UTF-16 code units, as JSON Schema counts them). */
  min(n: number): this {
    return this.with({ minLength: n });
  }
  /** At most `n` characters. */
  max(n: number): this {
    return this.with({ maxLength: n });
  }
}

export class NumberSchema extends Schema<number> {
  /** At least `n`. */
  min(n: number): this {
    return this.with({ minimum: n });
  }
  /** At most `n`. */
  max(n: number): this {
    return this.with({ maximum: n });
  }
}

export class ArraySchema<T> extends Schema<T[]> {
  /** At least `n` items. */
  min(n: number): this {
    return this.with({ minItems: n });
  }
  /** At most `n` items. */
  max(n: number): this {
    return this.with({ maxItems: n });
  }
}

export class ObjectSchema<Sh extends Shape> extends Schema<InferShape<Sh>> {
  /** The properties. */
  get shape(): Sh {
    return this.def.shape as Sh;
  }
}

const base = (kind: Kind, extra: Partial<Def> = {}): Def => ({ kind, presence: "required", ...extra });

/** The schema builders. */
export const s = {
  /** A string. */
  string: (): StringSchema => new StringSchema(base("string")),
  /** A whole number (JSON Schema `integer`). */
  integer: (): NumberSchema => new NumberSchema(base("integer")),
  /** Any finite number. */
  number: (): NumberSchema => new NumberSchema(base("number")),
  /** `true` or `false`. */
  boolean: (): Schema<boolean> => new Schema<boolean>(base("boolean")),
  /** One of the given strings. */
  enum: <const V extends readonly [string, ...string[]]>(values: V): Schema<V[number]> => {
    if (values.length === 0 || new Set(values).size !== values.length) {
      throw new Error("schema: s.enum takes one or more distinct strings");
    }
    return new Schema<V[number]>(base("enum", { values: [...values] }));
  },
  /** A list of `items`. */
  array: <S extends AnySchema>(items: S): ArraySchema<Infer<S>> => {
    if (items.def.presence !== "required") throw new Error("schema: array items cannot be optional or defaulted");
    return new ArraySchema<Infer<S>>(base("array", { items }));
  },
  /** An object with exactly these properties (no others). */
  object: <Sh extends Shape>(shape: Sh): ObjectSchema<Sh> => new ObjectSchema<Sh>(base("object", { shape: checkShape(shape) })),
};

function checkShape<Sh extends Shape>(shape: Sh): Sh {
  for (const [key, value] of Object.entries(shape)) {
    if (!(value instanceof Schema)) throw new Error(`schema: property \`${key}\` is not a schema (use s.string() and friends)`);
  }
  return shape;
}

/** Accepts `s.object({...})` or the bare `{...}` of properties. */
export function asObjectSchema<Sh extends Shape>(x: ObjectSchema<Sh> | Sh | undefined): ObjectSchema<Sh> {
  if (x === undefined) return s.object({}) as unknown as ObjectSchema<Sh>;
  if (x instanceof ObjectSchema) return x;
  if (x instanceof Schema) throw new Error("schema: an input or output schema must be s.object({...})");
  return s.object(x as Sh);
}

/** The schema as a document root: JSON Schema 2020-12. */
export function rootSchema(schema: ObjectSchema<Shape>): JsonObject {
  return { $schema: "https://json-schema.org/draft/2020-12/schema", ...schema.toJSON() };
}

function emit(def: Def): JsonObject {
  const out: JsonObject = {};
  switch (def.kind) {
    case "enum":
      out.type = "string";
      out.enum = [...(def.values ?? [])];
      break;
    case "array":
      out.type = "array";
      out.items = emit(def.items!.def);
      break;
    case "object": {
      out.type = "object";
      const properties: JsonObject = {};
      const required: string[] = [];
      for (const [key, value] of Object.entries(def.shape ?? {})) {
        properties[key] = emit(value.def);
        if (value.def.presence === "required") required.push(key);
      }
      out.properties = properties;
      if (required.length > 0) out.required = required;
      out.additionalProperties = false;
      break;
    }
    default:
      out.type = def.kind;
  }
  if (def.description !== undefined) out.description = def.description;
  if (def.default !== undefined) out.default = def.default;
  if (def.minimum !== undefined) out.minimum = def.minimum;
  if (def.maximum !== undefined) out.maximum = def.maximum;
  if (def.minLength !== undefined) out.minLength = def.minLength;
  if (def.maxLength !== undefined) out.maxLength = def.maxLength;
  if (def.minItems !== undefined) out.minItems = def.minItems;
  if (def.maxItems !== undefined) out.maxItems = def.maxItems;
  return out;
}

/** A JSON copy of `value` (an error names `what` if it is not JSON). */
export function toJsonValue(value: unknown, what: string): Json {
  if (value === undefined) throw new Error(`${what} is undefined`);
  const text = JSON.stringify(value);
  if (text === undefined) throw new Error(`${what} is not JSON`);
  return JSON.parse(text) as Json;
}

type Fail = (message: string) => Error;

function describeType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number" && !Number.isInteger(v)) return "a number";
  if (typeof v === "number") return "an integer";
  if (typeof v === "object") return "an object";
  return `a ${typeof v}`;
}

function field(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/**
 * Checks `value` against the schema and returns it with defaults filled in;
 * the error names the offending field.
 */
function checkValue(def: Def, value: unknown, path: string, fail: Fail): Json {
  const at = path === "" ? "the value" : `\`${path}\``;
  const expected = (what: string): never => {
    throw fail(`${at}: expected ${what}, got ${describeType(value)}`);
  };
  switch (def.kind) {
    case "string":
    case "enum": {
      if (typeof value !== "string") return expected("a string");
      if (def.values && !def.values.includes(value)) {
        throw fail(`${at}: expected one of ${def.values.map((v) => JSON.stringify(v)).join(", ")}, got ${JSON.stringify(value)}`);
      }
      if (def.minLength !== undefined && value.length < def.minLength) throw fail(`${at}: shorter than ${def.minLength} characters`);
      if (def.maxLength !== undefined && value.length > def.maxLength) throw fail(`${at}: longer than ${def.maxLength} characters`);
      return value;
    }
    case "integer":
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) return expected(def.kind === "integer" ? "an integer" : "a number");
      if (def.kind === "integer" && !Number.isInteger(value)) return expected("an integer");
      if (def.minimum !== undefined && value < def.minimum) throw fail(`${at}: less than ${def.minimum}`);
      if (def.maximum !== undefined && value > def.maximum) throw fail(`${at}: more than ${def.maximum}`);
      return value;
    }
    case "boolean":
      if (typeof value !== "boolean") return expected("a boolean");
      return value;
    case "array": {
      if (!Array.isArray(value)) return expected("an array");
      if (def.minItems !== undefined && value.length < def.minItems) throw fail(`${at}: fewer than ${def.minItems} items`);
      if (def.maxItems !== undefined && value.length > def.maxItems) throw fail(`${at}: more than ${def.maxItems} items`);
      return value.map((item, i) => checkValue(def.items!.def, item, `${path}[${i}]`, fail));
    }
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return expected("an object");
      const input = value as Record<string, unknown>;
      const shape = def.shape ?? {};
      const out: JsonObject = {};
      for (const key of Object.keys(input)) {
        if (!Object.prototype.hasOwnProperty.call(shape, key) && input[key] !== undefined) {
          throw fail(`\`${field(path, key)}\`: unknown field`);
        }
      }
      for (const [key, prop] of Object.entries(shape)) {
        const v = input[key];
        if (v === undefined) {
          if (prop.def.presence === "required") throw fail(`\`${field(path, key)}\`: missing required field`);
          if (prop.def.presence === "defaulted") out[key] = JSON.parse(JSON.stringify(prop.def.default)) as Json;
          continue;
        }
        out[key] = checkValue(prop.def, v, field(path, key), fail);
      }
      return out;
    }
  }
}

/** Checks arguments (parsed JSON) against a schema; throws `InvalidArguments`. */
export function parseArguments<S extends AnySchema>(schema: S, value: unknown): Infer<S> {
  return checkValue(schema.def, value, "", (m) => new InvalidArguments(m)) as Infer<S>;
}

/** Checks a value against a schema; the error message names the field. */
export function checkAgainst(schema: AnySchema, value: unknown, fail: Fail): Json {
  return checkValue(schema.def, value, "", fail);
}
