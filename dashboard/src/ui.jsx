// Small shared pieces: labelled fields with their API error beside them, loading,
// empty and error states, and a hook that loads data and reloads on demand.
import { cloneElement } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';

let ids = 0;
const nextId = () => `f${++ids}`;

/** A visible label, the control, and the API's message for this field under it. */
export function Field({ label, error, hint, children }) {
  const [id] = useState(nextId);
  const errId = `${id}-err`;
  const child = cloneElement(children, {
    id,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': error ? errId : undefined,
  });
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {child}
      {hint && <small class="hint">{hint}</small>}
      {error && (
        <p class="field-error" id={errId} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export function Loading({ what = 'Loading' }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

export function Empty({ children }) {
  return <p class="empty">{children}</p>;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return (
    <p class="error-box" role="alert">
      {error.message || String(error)}
    </p>
  );
}

/** Turns an `ApiError` into `{field: message}` plus a form-level message. */
export function formErrors(e, fields) {
  if (e && e.field && fields.includes(e.field)) return { [e.field]: e.message };
  if (e && e.field) {
    const top = e.field.split('.')[0];
    if (fields.includes(top)) return { [top]: e.message };
  }
  return { _form: e ? e.message : '' };
}

/** Loads `fn()` now and whenever `reload()` is called or `deps` change. */
export function useLoad(fn, deps) {
  const [state, setState] = useState({ loading: true, data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    fn().then(
      (data) => live && setState({ loading: false, data, error: null }),
      (error) => live && setState({ loading: false, data: null, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Shows loading / error / children(data). */
export function Loaded({ load, what, children }) {
  if (load.error) return <ErrorBox error={load.error} />;
  if (load.loading && !load.data) return <Loading what={what} />;
  return children(load.data);
}

export function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
}

export function Status({ value }) {
  return <span class={`badge badge-${value}`}>{value}</span>;
}

/** A duration in milliseconds, readable: `0.21 ms`, `12 ms`. */
export function ms(value) {
  if (value === null || value === undefined) return '—';
  return `${value < 10 ? Number(value).toFixed(2) : Math.round(value)} ms`;
}
