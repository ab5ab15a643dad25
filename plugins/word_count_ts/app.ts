import { prompt, resource, s, tool } from "moat";

tool({
  name: "ts_word_count",
  title: "Word count (TypeScript)",
  description: "Counts the words, lines and characters (Unicode code points) of a text.",
  input: { text: s.string().describe("The text to count."), unique: s.boolean().default(false).describe("Also count distinct words, ignoring case.") },
  output: {
    words: s.integer().describe("Whitespace-separated tokens."), lines: s.integer().describe("Lines, as Python's str.splitlines counts them."),
    chars: s.integer().describe("Unicode code points."), unique_words: s.integer().optional().describe("Distinct words ignoring case; only when unique is true."),
  },
  annotations: { readOnly: true, idempotent: true },
  run({ text, unique }) {
    const words = text.match(/[^\s\x1c-\x1f\x85]+/g) ?? []; // Python's str.split() whitespace
    const parts = text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/); // and str.splitlines() breaks
    const distinct = unique ? new Set(words.map((w) => w.toUpperCase().toLowerCase())).size : undefined; // ~ casefold
    return { words: words.length, lines: parts.length - (parts.at(-1) === "" ? 1 : 0), chars: [...text].length, unique_words: distinct };
  },
});

resource({ uri: "wordcount://ts/about", name: "ts_about", mimeType: "text/plain", description: "How the TypeScript word counter counts.",
  read: () => "Words are whitespace-separated tokens, lines are counted as Python's str.splitlines does, chars are Unicode code points." });
prompt({ name: "ts_summarize", description: "Asks the model to summarise a text in three sentences.", arguments: { text: "The text to summarise." },
  render: ({ text }) => `Summarise this text in three sentences:\n\n${text}` });
