import { describe, expect, it } from "vitest";
import { fieldErrors, readableMessage, toApiError } from "./problem";

const problem = (code: string, status: number, extra: object = {}) => ({
  type: `https://storefleet.dev/problems/${code}`,
  title: code,
  status,
  ...extra,
});

describe("problem documents", () => {
  it("puts per-field errors on their fields", () => {
    const err = toApiError(
      422,
      problem("invalid", 422, {
        detail: "validation failed",
        errors: [
          { location: "body.name", message: "name is reserved", value: "www" },
          { location: "body.domain", message: "expected a DNS name" },
        ],
      }),
    );
    expect(fieldErrors(err)).toEqual({ name: "name is reserved", domain: "expected a DNS name" });
  });

  it("shows a name taken by someone else on the name field", () => {
    const err = toApiError(409, problem("conflict", 409, { detail: 'store "acme" already exists' }));
    expect(fieldErrors(err)).toEqual({ name: 'store "acme" already exists' });
  });

  it("words quota and rate limits for people", () => {
    expect(readableMessage(toApiError(403, problem("quota-exceeded", 403, { limit: 5 })))).toBe(
      "You already have 5 stores, the most you may have. Delete one to create another.",
    );
    const limited = toApiError(429, problem("rate-limited", 429));
    limited.retryAfter = 12;
    expect(readableMessage(limited)).toBe("Too many changes in a short time. Try again in 12 seconds.");
    expect(readableMessage(toApiError(500, problem("internal", 500, { requestId: "01J9" })))).toMatch(/request 01J9/);
  });

  it("never shows raw JSON for an answer that is no problem document", () => {
    const err = toApiError(502, "<html>bad gateway</html>");
    expect(readableMessage(err)).toBe("The server answered 502 without a problem document.");
    expect(readableMessage(toApiError(0, undefined))).toBe("The API could not be reached.");
  });
});
