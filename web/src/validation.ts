import { createRules } from "./api/rules";

// The create form's checks, by the rules the API publishes in its OpenAPI
// document (generated into api/rules.ts): what the form accepts, the API
// accepts, and the messages read the same.

const namePattern = new RegExp(createRules.name.pattern);
const domainPattern = new RegExp(createRules.domain.pattern);

export function validateName(name: string): string | null {
  if (name.length < createRules.name.minLength) return "A name is required.";
  if (name.length > createRules.name.maxLength)
    return `At most ${createRules.name.maxLength} characters (${name.length} now).`;
  if (/[A-Z]/.test(name)) return "Use lowercase letters only.";
  if (!namePattern.test(name)) {
    if (!/^[a-z]/.test(name)) return "Start with a lowercase letter.";
    if (name.endsWith("-")) return "End with a letter or digit.";
    return `Use ${createRules.name.patternDescription}.`;
  }
  if ((createRules.name.reserved as readonly string[]).includes(name)) return `"${name}" is reserved; choose another name.`;
  return null;
}

export function validateDomain(domain: string): string | null {
  if (domain === "") return null;
  if (domain.length > createRules.domain.maxLength) return `At most ${createRules.domain.maxLength} characters.`;
  if (!domainPattern.test(domain)) return `Use ${createRules.domain.patternDescription}, e.g. shops.example.com.`;
  return null;
}
