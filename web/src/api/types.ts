import type { components } from "./schema";

// Names for the schemas the dashboard uses, all generated from the API.
type Schemas = components["schemas"];
export type Store = Schemas["Store"];
export type StoreSummary = Schemas["StoreSummary"];
export type StoreList = Schemas["StoreList"];
export type StoreEvent = Schemas["StoreEvent"];
export type Condition = Schemas["Condition"];
export type Activity = Schemas["Activity"];
export type Problem = Schemas["Problem"];
export type AuthInfo = Schemas["AuthInfo"];
export type Me = Schemas["Me"];
export type CreateStoreRequest = Schemas["CreateStoreRequest"];
export type Phase = Store["phase"];
export type Engine = Store["engine"];
export type Plan = Store["plan"];
