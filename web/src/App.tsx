import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, Route, Switch } from "wouter";
import { getAuth, getMe } from "./api/client";
import { type Credentials, forgetToken, storedToken, storedUser, setCredentials } from "./api/identity";
import { describeError } from "./api/problem";
import type { AuthInfo } from "./api/types";
import { StoresPage } from "./components/StoresPage";
import { StorePage } from "./components/StorePage";
import { UserSwitcher } from "./components/UserSwitcher";
import { TokenForm } from "./components/TokenForm";

// credentialsFor picks what this tab sends, by how the server authenticates.
function credentialsFor(auth: AuthInfo, chosenUser: string | null, token: string | null): Credentials | null {
  if (auth.mode === "jwt") return token ? { kind: "token", token } : null;
  if (auth.userSwitcher) return { kind: "user", user: chosenUser ?? "alice", header: auth.userHeader ?? "X-User-Id" };
  return { kind: "proxy" };
}

function credentialsKey(c: Credentials | null): string {
  if (!c) return "none";
  return c.kind === "user" ? `user:${c.user}` : c.kind === "token" ? `token:${c.token.slice(-12)}` : "proxy";
}

export function App() {
  const qc = useQueryClient();
  const auth = useQuery({ queryKey: ["auth"], queryFn: getAuth, staleTime: Infinity });
  const [chosenUser, setChosenUser] = useState<string | null>(storedUser);
  const [token, setToken] = useState<string | null>(storedToken);

  const creds = auth.data ? credentialsFor(auth.data, chosenUser, token) : null;
  // Nothing to send until there is something (a signed-out tab sends no
  // stale token).
  setCredentials(creds ?? { kind: "proxy" });
  const key = credentialsKey(creds);
  const me = useQuery({ queryKey: ["me", key], queryFn: getMe, enabled: !!creds, staleTime: 60_000 });

  const switchUser = (user: string) => {
    qc.removeQueries({ predicate: (q) => q.queryKey[0] !== "auth" });
    setChosenUser(user);
  };

  let body;
  if (auth.isPending) {
    body = <p className="muted">Connecting to storefleet…</p>;
  } else if (auth.error) {
    body = <ErrorPanel err={auth.error} />;
  } else if (!creds) {
    body = <TokenForm issuer={auth.data.issuer} onToken={setToken} />;
  } else if (me.isPending) {
    body = <p className="muted">Signing in…</p>;
  } else if (me.error) {
    body =
      auth.data.mode === "jwt" ? (
        <TokenForm
          issuer={auth.data.issuer}
          error={describeError(me.error)}
          onToken={setToken}
        />
      ) : (
        <ErrorPanel
          title="Not signed in"
          err={me.error}
          hint="The proxy in front of storefleet did not say who you are: sign in through it, or ask the platform team."
        />
      );
  } else {
    const user = me.data.user;
    body = (
      <Switch>
        <Route path="/">
          <StoresPage user={user} plans={me.data.plans} />
        </Route>
        <Route path="/stores/:name">{(p) => <StorePage name={p.name} user={user} key={`${user}/${p.name}`} />}</Route>
        <Route>
          <div className="panel">
            <h1>Not found</h1>
            <p>
              There is no page here. <Link href="/">Back to your stores</Link>
            </p>
          </div>
        </Route>
      </Switch>
    );
  }

  return (
    <>
      <header className="topbar">
        <Link href="/" className="brand" aria-label="storefleet home">
          <img src="/favicon.svg" alt="" width={24} height={24} /> storefleet
        </Link>
        <div className="identity">
          {auth.data?.userSwitcher && creds?.kind === "user" ? (
            <UserSwitcher user={creds.user} onSwitch={switchUser} />
          ) : me.data ? (
            <span className="who">
              Signed in as <strong>{me.data.user}</strong>
              {me.data.admin ? " (admin)" : ""}
            </span>
          ) : null}
          {auth.data?.mode === "jwt" && token ? (
            <button
              type="button"
              className="link"
              onClick={() => {
                forgetToken();
                qc.clear();
                setToken(null);
              }}
            >
              Sign out
            </button>
          ) : null}
        </div>
      </header>
      <main>{body}</main>
    </>
  );
}

function ErrorPanel({ err, hint, title = "storefleet cannot be reached" }: { err: unknown; hint?: string; title?: string }) {
  return (
    <div className="panel error" role="alert">
      <h1>{title}</h1>
      <p>{describeError(err)}</p>
      {hint ? <p>{hint}</p> : null}
    </div>
  );
}
