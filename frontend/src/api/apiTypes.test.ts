// The API types cannot drift: schema.d.ts and filterKeys.ts must be what openapi-typescript makes of
// frontend/openapi.json, which tests/unit/test_console_api_types.py holds to the server's routes.
import { describe, expect, it } from "vitest";

import document from "../../openapi.json";
import { generate } from "../../scripts/api-types-lib.mjs";
import filterKeys from "./filterKeys.ts?raw";
import schema from "./schema.d.ts?raw";

describe("the API types", () => {
  it("are generated from openapi.json as it stands (else: make api-types)", async () => {
    const generated = await generate(document);
    expect(generated.schema === schema, "schema.d.ts is behind openapi.json: run make api-types").toBe(true);
    expect(generated.filterKeys).toBe(filterKeys);
  }, 20_000);
});
