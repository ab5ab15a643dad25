// Type-level checks: compiled by tsc (the test script fails on a type error),
// nothing here runs.
import { type Infer, prompt, resource, s, tool } from "../src/index.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expect = <T extends true>(): T => true as T;

const args = s.object({ text: s.string(), unique: s.boolean().default(false), mode: s.enum(["a", "b"]).optional(), tags: s.array(s.integer()) });
expect<Equal<Infer<typeof args>, { text: string; unique: boolean; tags: number[]; mode?: "a" | "b" }>>();

export function neverCalled(): void {
  tool({
    name: "t",
    description: "d",
    input: { text: s.string(), n: s.integer().optional() },
    run: ({ text, n }) => {
      expect<Equal<typeof text, string>>();
      expect<Equal<typeof n, number | undefined>>();
      return text;
    },
  });
  tool({
    name: "o",
    description: "d",
    input: args,
    output: { words: s.integer(), unique_words: s.integer().optional() },
    run: ({ unique }) => ({ words: 1, unique_words: unique ? 1 : undefined }),
  });
  tool({
    name: "bad_output",
    description: "d",
    output: { words: s.integer() },
    // @ts-expect-error words must be a number
    run: () => ({ words: "x" }),
  });
  tool({
    name: "missing_output",
    description: "d",
    output: { words: s.integer() },
    // @ts-expect-error words is required
    run: () => ({}),
  });
  // @ts-expect-error run is synchronous: a Promise is not a ToolReturn
  tool({
    name: "async",
    description: "d",
    run: async () => "x",
  });
  tool({
    name: "bad_arg",
    description: "d",
    input: { text: s.string() },
    // @ts-expect-error no such argument
    run: ({ nope }) => String(nope),
  });
  resource({
    uri: "file://{+path}/{name}",
    name: "f",
    read: (vars) => {
      expect<Equal<typeof vars, { path: string; name: string }>>();
      return vars.path;
    },
  });
  resource({ uri: "config://x", name: "c", read: () => "fixed" });
  prompt({
    name: "p",
    arguments: { text: "The text.", style: s.enum(["short", "long"]).optional() },
    render: (a) => {
      expect<Equal<typeof a, { text: string; style?: "short" | "long" }>>();
      return a.text;
    },
  });
  prompt({ name: "q", arguments: s.object({ x: s.string() }), render: ({ x }) => x });
}
