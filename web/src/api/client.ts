import createClient from "openapi-fetch";
import type { paths } from "./schema";
import { credentialHeaders } from "./identity";
import { ApiError, toApiError } from "./problem";
import type { CreateStoreRequest } from "./types";

// api is the typed client of the Intent API (same origin as the dashboard).
// fetch is looked up at each call (not bound once), so tests can stub it.
export const api = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? "",
  fetch: (req) => globalThis.fetch(req),
});

api.use({
  onRequest({ request }) {
    for (const [k, v] of Object.entries(credentialHeaders())) request.headers.set(k, v);
    return request;
  },
});

type Result<T> = { data?: T; error?: unknown; response: Response };

// must returns the data of a successful call or throws its ApiError.
async function must<T>(call: Promise<Result<T>>): Promise<T> {
  let res: Result<T>;
  try {
    res = await call;
  } catch {
    throw toApiError(0, undefined);
  }
  if (res.error !== undefined || !res.response.ok) {
    const err = toApiError(res.response.status, res.error);
    const retry = Number(res.response.headers.get("Retry-After"));
    if (retry > 0) err.retryAfter = retry;
    throw err;
  }
  return res.data as T;
}

export const getAuth = () => must(api.GET("/api/v1/auth"));
export const getMe = () => must(api.GET("/api/v1/me"));
export const listStores = () => must(api.GET("/api/v1/stores", { params: { query: { limit: 500 } } }));
export const getStore = (name: string) => must(api.GET("/api/v1/stores/{name}", { params: { path: { name } } }));
export const createStore = (body: CreateStoreRequest) => must(api.POST("/api/v1/stores", { body }));
export const deleteStore = (name: string) =>
  must(api.DELETE("/api/v1/stores/{name}", { params: { path: { name } } }));
export const retryStore = (name: string) =>
  must(api.POST("/api/v1/stores/{name}/retry", { params: { path: { name } } }));

export const createAdminInvite = (name: string, email?: string) =>
  must(api.POST("/api/v1/stores/{name}/admin-invite", { params: { path: { name } }, body: email ? { email } : {} }));

export { ApiError };
