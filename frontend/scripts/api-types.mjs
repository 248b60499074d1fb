// Writes the console's API types (src/api/schema.d.ts, src/api/filterKeys.ts) from the server's OpenAPI document:
//   make api-types                         # openapi.json from the routes (python), then this
//   npm run api-types                      # from frontend/openapi.json
//   npm run api-types -- http://127.0.0.1:8000/api/openapi.json    # or from a running stack
import { readFile, writeFile } from "node:fs/promises";

import { generate } from "./api-types-lib.mjs";

const source = process.argv[2] ?? new URL("../openapi.json", import.meta.url).pathname;
const text = source.startsWith("http") ? await (await fetch(source)).text() : await readFile(source, "utf8");
const { schema, filterKeys, lists } = await generate(JSON.parse(text));
await writeFile(new URL("../src/api/schema.d.ts", import.meta.url), schema);
await writeFile(new URL("../src/api/filterKeys.ts", import.meta.url), filterKeys);
console.log(`schema.d.ts and filterKeys.ts (${lists} lists) from ${source}`);
