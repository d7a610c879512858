import { describe, expect, it } from "vitest";
import { createRules } from "./api/rules";
import { validateDomain, validateName } from "./validation";

describe("validateName", () => {
  it.each([
    ["acme", null],
    ["a", null],
    ["my-shop-2", null],
    ["", "A name is required."],
    ["Acme", "Use lowercase letters only."],
    ["2shop", "Start with a lowercase letter."],
    ["-shop", "Start with a lowercase letter."],
    ["shop-", "End with a letter or digit."],
    ["my_shop", `Use ${createRules.name.patternDescription}.`],
    ["my shop", `Use ${createRules.name.patternDescription}.`],
    ["a".repeat(41), "At most 40 characters (41 now)."],
    ["admin", '"admin" is reserved; choose another name.'],
    ["www", '"www" is reserved; choose another name.'],
  ])("%j → %j", (name, want) => {
    expect(validateName(name)).toBe(want);
  });

  it("uses the API's published rules", () => {
    expect(createRules.name.maxLength).toBe(40);
    expect(createRules.name.reserved).toContain("kube-system");
    // Every reserved name is refused, and only for being reserved.
    for (const r of createRules.name.reserved) expect(validateName(r)).toMatch(/reserved/);
  });
});

describe("validateDomain", () => {
  it.each([
    ["", null],
    ["shops.example.com", null],
    ["Shops.example.com", expect.stringMatching(/^Use /)],
    ["shops..example.com", expect.stringMatching(/^Use /)],
    ["x".repeat(201), "At most 200 characters."],
  ])("%j", (domain, want) => {
    expect(validateDomain(domain)).toEqual(want);
  });
});
