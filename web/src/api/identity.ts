// Who the dashboard speaks for. In header mode behind a proxy the proxy sets
// the user and the dashboard sends nothing; in storefleet dev (userSwitcher)
// the dashboard sends X-User-Id itself; in jwt mode it sends a bearer token.
// Kept per tab (sessionStorage) so two tabs can be two users side by side;
// the last choice seeds new tabs (localStorage).

export type Credentials =
  | { kind: "proxy" }
  | { kind: "user"; user: string; header: string }
  | { kind: "token"; token: string };

const userKey = "storefleet.user";
const tokenKey = "storefleet.token";

let current: Credentials = { kind: "proxy" };

function read(key: string): string | null {
  try {
    return sessionStorage.getItem(key) ?? localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string | null) {
  try {
    for (const s of [sessionStorage, localStorage]) {
      if (value === null) s.removeItem(key);
      else s.setItem(key, value);
    }
  } catch {
    // Storage may be disabled; the choice then lasts for this page only.
  }
}

export function storedUser(): string | null {
  return read(userKey);
}

export function storedToken(): string | null {
  return read(tokenKey);
}

// setCredentials runs on every render of the app; storage is written only
// when the choice changes.
export function setCredentials(c: Credentials) {
  const changed = JSON.stringify(c) !== JSON.stringify(current);
  current = c;
  if (!changed) return;
  if (c.kind === "user") write(userKey, c.user);
  if (c.kind === "token") write(tokenKey, c.token);
}

export function forgetToken() {
  write(tokenKey, null);
  if (current.kind === "token") current = { kind: "proxy" };
}

export function credentialHeaders(): Record<string, string> {
  switch (current.kind) {
    case "user":
      return { [current.header]: current.user };
    case "token":
      return { Authorization: `Bearer ${current.token}` };
    default:
      return {};
  }
}
