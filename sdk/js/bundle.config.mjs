// Passed to `jco componentize --bundle-config` by `moat build`: the bundler
// resolves every `import ... from "moat"` to this copy of the SDK, wherever the
// importing module lives (the author's folder has no node_modules/moat, and a
// tsconfig `paths` entry there may point at another copy). The WIT imports
// (`moat:plugin/...`) stay imports: the engine provides them.
import { fileURLToPath } from "node:url";

const index = fileURLToPath(new URL("./src/index.ts", import.meta.url));

export default {
  plugins: [
    {
      name: "moat-sdk",
      resolveId(id) {
        if (id === "moat") return index;
        if (id.startsWith("moat:plugin/")) return { id, external: true };
        return null;
      },
    },
  ],
};
