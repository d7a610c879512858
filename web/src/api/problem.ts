import type { Problem } from "./types";

// ApiError carries the RFC 9457 problem document of a failed request.
export class ApiError extends Error {
  // retryAfter is the Retry-After of a rate-limited answer, in seconds.
  retryAfter?: number;

  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title);
    this.name = "ApiError";
  }

  // code is the stable last segment of the problem type, e.g. "quota-exceeded".
  get code(): string {
    return this.problem.type.split("/").pop() ?? "";
  }
}

// toApiError turns whatever a failed call produced into an ApiError, also
// when a proxy answered with something that is no problem document.
export function toApiError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object" && "title" in body && "type" in body) {
    return new ApiError(status, body as Problem);
  }
  return new ApiError(status, {
    type: "about:blank",
    title: status ? `HTTP ${status}` : "Network error",
    status,
    detail: status ? `The server answered ${status} without a problem document.` : "The API could not be reached.",
  });
}

// fieldErrors maps the problem's per-field errors (locations like
// "body.name") to the form's fields; a name taken by another user is the name
// field's problem too.
export function fieldErrors(err: ApiError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of err.problem.errors ?? []) {
    const field = (e.location ?? "").replace(/^body\./, "");
    if (field && !out[field] && e.message) out[field] = e.message;
  }
  if (err.code === "conflict" && !out.name) out.name = err.problem.detail ?? "This name is already taken.";
  return out;
}

// readableMessage is what a person reads for a failure that is not one
// field's: quotas and rate limits in words, never raw JSON.
export function readableMessage(err: ApiError): string {
  const p = err.problem;
  const retryAfterSeconds = err.retryAfter;
  switch (err.code) {
    case "quota-exceeded":
      return p.limit
        ? `You already have ${p.limit} stores, the most you may have. Delete one to create another.`
        : "You have reached your store quota. Delete a store to create another.";
    case "rate-limited": {
      const wait = retryAfterSeconds ? `in ${retryAfterSeconds} seconds` : "in a minute";
      return `Too many changes in a short time. Try again ${wait}.`;
    }
    case "too-many-streams":
      return "Too many live views are open for you. Close some tabs.";
    case "unauthenticated":
      return `You are not signed in: ${p.detail ?? p.title}`;
    case "unavailable":
      return `storefleet is not ready: ${p.detail ?? p.title}. Try again shortly.`;
    case "internal":
      return `Something went wrong on our side${p.requestId ? ` (request ${p.requestId})` : ""}. Try again; if it persists, tell the platform team the request id.`;
    default:
      return p.detail ?? p.title;
  }
}

// describeError is the sentence for any failure a query or mutation ended with.
export function describeError(err: unknown): string {
  return err instanceof ApiError ? readableMessage(err) : String(err);
}
