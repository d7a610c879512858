import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useLocation } from "wouter";
import { createStore } from "../api/client";
import { ApiError, describeError, fieldErrors } from "../api/problem";
import { createRules } from "../api/rules";
import type { Engine, Plan, Store } from "../api/types";
import { validateDomain, validateName } from "../validation";

const engineLabels: Record<Engine, string> = { medusa: "MedusaJS", woocommerce: "WooCommerce" };
const planLabels: Record<Plan, string> = {
  small: "Small — 1 CPU, 2 GiB reserved, 5 GiB database",
  medium: "Medium — 3 CPU, 6 GiB reserved, 20 GiB database",
  large: "Large — 8 CPU, 16 GiB reserved, 100 GiB database",
};

// CreateStoreForm checks the name as it is typed, by the API's own rules, and
// puts the API's answer on the field it concerns. plans are those the user
// may pick (GET /api/v1/me; the platform sets them per group); only they are
// offered.
export function CreateStoreForm({ user, plans }: { user: string; plans?: string[] }) {
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const [name, setName] = useState("");
  const [touched, setTouched] = useState(false);
  const [engine, setEngine] = useState<Engine>("medusa");
  const offered: Plan[] = createRules.plans.filter((p) => !plans || plans.includes(p));
  const [plan, setPlan] = useState<Plan>(
    offered.includes(createRules.defaultPlan as Plan) ? (createRules.defaultPlan as Plan) : (offered[0] ?? (createRules.defaultPlan as Plan)),
  );
  const [domain, setDomain] = useState("");
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});

  const create = useMutation({
    mutationFn: () => createStore({ name, engine, plan, ...(domain ? { domain } : {}) }),
    onSuccess: (store: Store) => {
      qc.setQueryData(["store", user, store.name], store);
      void qc.invalidateQueries({ queryKey: ["stores", user] });
      navigate(`/stores/${store.name}`);
    },
    onError: (err) => {
      if (err instanceof ApiError) setServerErrors(fieldErrors(err));
    },
  });

  const nameError = serverErrors.name ?? (touched || name ? validateName(name) : null);
  const domainError = serverErrors.domain ?? validateDomain(domain);
  // A failure that names no field is the form's.
  const formError =
    create.error && !(create.error instanceof ApiError && Object.keys(fieldErrors(create.error)).length > 0)
      ? describeError(create.error)
      : null;

  return (
    <form
      className="panel create"
      aria-labelledby="create-title"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTouched(true);
        // The checks as typed mirror the API's rules, but the API has the
        // last word: its answer replaces them on the field it concerns.
        if (name === "") return;
        setServerErrors({});
        create.mutate();
      }}
    >
      <h2 id="create-title">New store</h2>
      <div className="field">
        <label htmlFor="store-name">Name</label>
        <input
          id="store-name"
          name="name"
          value={name}
          placeholder="acme"
          autoComplete="off"
          spellCheck={false}
          // A little room past the limit, so the length message is seen
          // instead of keystrokes silently dropped.
          maxLength={createRules.name.maxLength + 10}
          aria-invalid={!!nameError}
          aria-describedby="store-name-help store-name-error"
          onChange={(e) => {
            setName(e.target.value);
            setServerErrors(({ name: _, ...rest }) => rest);
          }}
          onBlur={() => setTouched(true)}
        />
        <small id="store-name-help" className="muted">
          Lowercase letters, digits and “-”; its hosts become <code>{name || "<name>"}.&lt;domain&gt;</code>.
        </small>
        <p
          id="store-name-error"
          className="field-error"
          role="alert"
          data-testid="name-error"
          data-source={serverErrors.name ? "api" : "form"}
        >
          {nameError ?? ""}
        </p>
      </div>
      <fieldset className="field">
        <legend>Engine</legend>
        {createRules.engines.map((e) => (
          <label key={e} className="choice">
            <input type="radio" name="engine" value={e} checked={engine === e} onChange={() => setEngine(e)} />
            {engineLabels[e]}
            {e === "woocommerce" ? <span className="badge badge-comingsoon">Coming soon</span> : null}
          </label>
        ))}
        {engine === "woocommerce" ? (
          <small className="muted">WooCommerce stores are recorded now and provisioned once the engine ships.</small>
        ) : null}
      </fieldset>
      <div className="field">
        <label htmlFor="store-plan">Plan</label>
        <select
          id="store-plan"
          value={plan}
          aria-describedby="store-plan-error"
          onChange={(e) => {
            setPlan(e.target.value as Plan);
            setServerErrors(({ plan: _, ...rest }) => rest);
          }}
        >
          {offered.map((p) => (
            <option key={p} value={p}>
              {planLabels[p]}
            </option>
          ))}
        </select>
        {offered.length === 0 ? <small className="muted">No plan is open to you; ask the platform team.</small> : null}
        <p id="store-plan-error" className="field-error" role="alert" data-testid="plan-error">
          {serverErrors.plan ?? ""}
        </p>
      </div>
      <div className="field">
        <label htmlFor="store-domain">Domain (optional)</label>
        <input
          id="store-domain"
          value={domain}
          placeholder="platform default"
          autoComplete="off"
          spellCheck={false}
          aria-invalid={!!domainError}
          aria-describedby="store-domain-error"
          onChange={(e) => {
            setDomain(e.target.value.trim());
            setServerErrors(({ domain: _, ...rest }) => rest);
          }}
        />
        <p id="store-domain-error" className="field-error" role="alert">
          {domainError ?? ""}
        </p>
      </div>
      {formError ? (
        <p className="form-error" role="alert" data-testid="form-error">
          {formError}
        </p>
      ) : null}
      <button type="submit" className="primary" disabled={create.isPending}>
        {create.isPending ? "Creating…" : "Create store"}
      </button>
    </form>
  );
}
