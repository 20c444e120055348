// Optional runtime validation of requests against the server's own JSON Schemas (draft
// 2020-12), with a validator you bring: Ajv's `Ajv2020` (`import { Ajv2020 } from "ajv/dist/2020.js"`; `new Ajv2020({ strict: false, validateFormats: false })`).
// The server validates every payload anyway; this catches a mistake before it is sent.

import bundle from "./generated/schemas.json" with { type: "json" };

import type { ClientEventName, RequestValidator } from "./index.js";

/** What is needed of Ajv: compiling a schema into a check that keeps its errors. */
export interface SchemaCompiler {
  compile(schema: object): ((data: unknown) => boolean) & {
    errors?: Array<{ instancePath?: string; message?: string }> | null;
  };
}

type Bundle = {
  index: { clientEvents: Record<string, { request: string; ack: string }> };
  schemas: Record<string, object>;
};

const schemas = bundle as unknown as Bundle;

/** `/api/schemas/<name>.json` → `<name>`. */
function schemaName(url: string): string {
  return url.slice(url.lastIndexOf("/") + 1).replace(/\.json$/, "");
}

/** The schema a client event's payload must satisfy. */
export function requestSchema(event: ClientEventName): object | undefined {
  const url = schemas.index.clientEvents[event]?.request;
  return url === undefined ? undefined : schemas.schemas[schemaName(url)];
}

/** A `validate` option for `connect`, compiling each event's schema on first use. */
export function requestValidator(compiler: SchemaCompiler): RequestValidator {
  const compiled = new Map<string, ReturnType<SchemaCompiler["compile"]>>();
  return (event, payload) => {
    let check = compiled.get(event);
    if (check === undefined) {
      const schema = requestSchema(event);
      if (schema === undefined) {
        return `unknown event ${event}`;
      }
      check = compiler.compile(schema);
      compiled.set(event, check);
    }
    if (check(payload)) {
      return null;
    }
    return (check.errors ?? [])
      .map((e) => `${e.instancePath || "payload"} ${e.message ?? "is invalid"}`)
      .join("; ");
  };
}
