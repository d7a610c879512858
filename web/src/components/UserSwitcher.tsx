import { useState } from "react";

// UserSwitcher is storefleet dev's stand-in for a login: the dashboard sends
// the chosen id as X-User-Id, so two tabs can act as two users side by side.
export function UserSwitcher({ user, onSwitch }: { user: string; onSwitch: (u: string) => void }) {
  const [draft, setDraft] = useState(user);
  const valid = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/.test(draft);
  return (
    <form
      className="switcher"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid && draft !== user) onSwitch(draft);
      }}
    >
      <label htmlFor="user-switcher">User (dev)</label>
      <input
        id="user-switcher"
        list="dev-users"
        value={draft}
        onChange={(e) => setDraft(e.target.value.trim())}
        aria-invalid={!valid}
        autoComplete="off"
        spellCheck={false}
      />
      <datalist id="dev-users">
        <option value="alice" />
        <option value="bob" />
      </datalist>
      <button type="submit" disabled={!valid || draft === user}>
        Switch
      </button>
    </form>
  );
}
