// The API's records as the server describes them: aliases of the types openapi-typescript generates from
// /api/openapi.json (schema.d.ts, `make api-types`), so a renamed or retyped key fails the build, not the page.

import type { components } from "./schema";

type Schemas = components["schemas"];

export type State = Schemas["State"];
export type Gateway = Schemas["Gateway"];
export type Node = Schemas["Node"];
export type Source = Schemas["Source"];
export type Field = Schemas["Field"];
export type Payload = Schemas["Payload"];
export type Task = Schemas["Task"];
export type Schedule = Schemas["Schedule"];
export type Handler = Schemas["Handler"];
export type ForwardPayload = Schemas["ForwardPayload"];
export type Firmware = Schemas["Firmware"];
export type User = Schemas["UserView"];
export type ServiceToken = Schemas["ServiceTokenView"];
export type SystemSettings = Schemas["SystemSettings"];
export type LoginReply = Schemas["LoginReply"];
export type ApiDashboard = Schemas["Dashboard"];
export type ApiWidget = Schemas["Widget"];

/** A page of a list (GET /api/<resource>?limit&offset&filter&sortBy). */
export type PageOf<T> = { count: number; limit: number; offset: number; data: T[] };
