import { useState } from "react";

// TokenForm takes an OIDC bearer token (auth mode jwt). The dashboard does
// not run the OIDC flow itself; the token comes from the issuer's tooling.
export function TokenForm({ issuer, error, onToken }: { issuer?: string; error?: string; onToken: (t: string) => void }) {
  const [token, setToken] = useState("");
  return (
    <form
      className="panel"
      onSubmit={(e) => {
        e.preventDefault();
        if (token.trim()) onToken(token.trim());
      }}
    >
      <h1>Sign in</h1>
      <p>
        storefleet accepts bearer tokens{issuer ? <> issued by <code>{issuer}</code></> : null}. Paste yours to
        continue; it is kept in this browser only.
      </p>
      {error ? (
        <p className="field-error" role="alert">
          {error}
        </p>
      ) : null}
      <label htmlFor="token">Token</label>
      <textarea id="token" rows={4} value={token} onChange={(e) => setToken(e.target.value)} spellCheck={false} />
      <button type="submit" disabled={!token.trim()}>
        Sign in
      </button>
    </form>
  );
}
