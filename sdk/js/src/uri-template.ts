// Resource templates, with the definition the host routes by: literal URI text,
// `{name}` (one or more characters of one path segment: no `/`) and `{+name}`
// (one or more of any characters). A variable takes the longest run after which
// the rest of the template still matches, leftmost variable first.

type Atom = { lit: string } | { seg: true } | { rest: true };

export interface Template {
  readonly atoms: readonly Atom[];
  readonly names: readonly string[];
}

/** The variable names of a template, e.g. `"file://{+path}"` gives `"path"`. */
type VarsOf<U extends string> = U extends `${string}{${infer E}}${infer Rest}`
  ? (E extends `+${infer N}` ? N : E) | VarsOf<Rest>
  : never;

/** The variables of a URI matched against the template `U`. */
export type UriVars<U extends string> = { [K in VarsOf<U>]: string };

const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;
const NAME = /^[A-Za-z0-9_.]+$/;

/** Whether `uri` is a template (holds `{`). */
export function isTemplate(uri: string): boolean {
  return uri.includes("{");
}

/** Parses a template; the error says what is wrong with it. */
export function parseTemplate(template: string): Template {
  if (template.length === 0 || template.length > 256) throw new Error("must be 1 to 256 characters long");
  const atoms: Atom[] = [];
  const names: string[] = [];
  const literal = (text: string): void => {
    if (!URI_CHARS.test(text)) throw new Error(`holds a character a URI cannot hold unescaped in ${JSON.stringify(text)}`);
    for (const ch of text) atoms.push({ lit: ch });
  };
  let rest = template;
  while (rest.length > 0) {
    const open = rest.search(/[{}]/);
    if (open < 0) {
      literal(rest);
      break;
    }
    if (rest[open] === "}") throw new Error("has a `}` without a `{`");
    literal(rest.slice(0, open));
    const close = rest.indexOf("}", open);
    if (close < 0) throw new Error("has a `{` without a `}`");
    const expr = rest.slice(open + 1, close);
    const greedy = expr.startsWith("+");
    const name = greedy ? expr.slice(1) : expr;
    if (!NAME.test(name)) {
      throw new Error(`expression \`{${expr}}\` is not supported: moat routes \`{name}\` and \`{+name}\`, names of A-Z a-z 0-9 _ .`);
    }
    if (names.includes(name)) throw new Error(`names \`${name}\` twice`);
    if (names.length === 16) throw new Error("has more than 16 expressions");
    names.push(name);
    atoms.push(greedy ? { rest: true } : { seg: true });
    rest = rest.slice(close + 1);
  }
  return { atoms, names };
}

function admits(a: Atom, ch: string): boolean {
  if ("lit" in a) return a.lit === ch;
  if ("seg" in a) return ch !== "/";
  return true;
}

const isVar = (a: Atom): boolean => !("lit" in a);

/** The variables of `uri` if it matches the template, else `undefined`. */
export function matchTemplate(t: Template, uri: string): Record<string, string> | undefined {
  const u = uri.split("");
  const n = t.atoms.length;
  // ok[i][a]: atoms[a..] match u[i..]. Linear in the URI's length times the template's.
  const ok: boolean[][] = [];
  for (let i = 0; i <= u.length; i++) ok.push(new Array<boolean>(n + 1).fill(false));
  ok[u.length]![n] = true;
  for (let i = u.length - 1; i >= 0; i--) {
    const row = ok[i]!;
    const next = ok[i + 1]!;
    for (let a = n - 1; a >= 0; a--) {
      const atom = t.atoms[a]!;
      row[a] = admits(atom, u[i]!) && (next[a + 1]! || (isVar(atom) && next[a]!));
    }
  }
  if (!ok[0]![0]) return undefined;
  const vars: Record<string, string> = {};
  let names = 0;
  let i = 0;
  for (let a = 0; a < n; a++) {
    const atom = t.atoms[a]!;
    if (!isVar(atom)) {
      i++;
      continue;
    }
    let end = -1;
    for (let j = i; j < u.length && admits(atom, u[j]!); ) {
      j++;
      if (ok[j]![a + 1]) end = j;
    }
    if (end < 0) return undefined;
    vars[t.names[names++]!] = u.slice(i, end).join("");
    i = end;
  }
  return vars;
}
