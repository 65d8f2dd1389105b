// An app's routes: the list, a form to add one, and a panel to try a request
// against the app's public edge (`/{slug}/…`) and see status, headers and time.
import { useState } from 'preact/hooks';
import { del, enc, get, post } from '../api.js';
import { Empty, Field, Loaded, formErrors, useLoad } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', '*'];

export function Routes({ slug }) {
  const load = useLoad(
    () => Promise.all([get(`apps/${enc(slug)}/routes`), get(`apps/${enc(slug)}/scripts`)]),
    [slug],
  );
  const [tryPath, setTryPath] = useState('/');
  const [tryMethod, setTryMethod] = useState('GET');
  return (
    <AppLayout slug={slug} tab="Routes" title={`Routes of ${slug}`}>
      <Loaded load={load} what="Loading routes">
        {([routes, scripts]) => {
          const names = Object.fromEntries(scripts.scripts.map((s) => [s.id, s.name]));
          return (
            <>
              {routes.routes.length === 0 ? (
                <Empty>No routes yet: add one to give a script a URL.</Empty>
              ) : (
                <table>
                  <caption class="sr-only">Routes</caption>
                  <thead>
                    <tr>
                      <th scope="col">Method</th>
                      <th scope="col">Path</th>
                      <th scope="col">Script</th>
                      <th scope="col">Actions</th>
                    </tr>
                  </thead>
                  <tbody>
                    {routes.routes.map((r) => (
                      <tr key={r.id}>
                        <td>{r.method}</td>
                        <td>
                          <code>{r.path}</code>
                        </td>
                        <td>{names[r.script_id] ?? r.script_id}</td>
                        <td class="actions">
                          <button
                            type="button"
                            class="secondary"
                            onClick={() => {
                              setTryMethod(r.method === '*' ? 'GET' : r.method);
                              setTryPath(r.path.replace(/:([A-Za-z_]+)/g, '$1-value').replace(/\*.*$/, ''));
                              document.getElementById('try-it')?.scrollIntoView();
                            }}
                          >
                            Try {r.method} {r.path}
                          </button>
                          <button
                            type="button"
                            class="danger"
                            onClick={async () => {
                              await del(`routes/${enc(r.id)}`);
                              load.reload();
                            }}
                          >
                            Delete route {r.method} {r.path}
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <AddRoute slug={slug} scripts={scripts.scripts} onAdded={load.reload} />
            </>
          );
        }}
      </Loaded>
      <TryIt
        slug={slug}
        method={tryMethod}
        setMethod={setTryMethod}
        path={tryPath}
        setPath={setTryPath}
      />
    </AppLayout>
  );
}

function AddRoute({ slug, scripts, onAdded }) {
  const [method, setMethod] = useState('GET');
  const [path, setPath] = useState('/');
  const [scriptId, setScriptId] = useState(scripts[0]?.id ?? '');
  const [errors, setErrors] = useState({});
  if (scripts.length === 0) {
    return <Empty>Create a script first, then give it a route.</Empty>;
  }
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      await post(`apps/${enc(slug)}/routes`, { method, path, script_id: scriptId });
      onAdded();
    } catch (err) {
      setErrors(formErrors(err, ['method', 'path', 'script_id']));
    }
  };
  return (
    <section aria-labelledby="new-route">
      <h2 id="new-route">New route</h2>
      <form onSubmit={submit} class="row">
        <Field label="Method" error={errors.method}>
          <select value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
            {METHODS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Path pattern" error={errors.path} hint="e.g. /users/:id">
          <input value={path} required onInput={(e) => setPath(e.currentTarget.value)} />
        </Field>
        <Field label="Script" error={errors.script_id}>
          <select value={scriptId} onChange={(e) => setScriptId(e.currentTarget.value)}>
            {scripts.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </Field>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        <button type="submit">Add route</button>
      </form>
    </section>
  );
}

function TryIt({ slug, method, setMethod, path, setPath }) {
  const [body, setBody] = useState('');
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  const send = async (e) => {
    e.preventDefault();
    setBusy(true);
    const started = performance.now();
    try {
      const p = path.startsWith('/') ? path : `/${path}`;
      const res = await fetch(`/${enc(slug)}${p}`, {
        method,
        credentials: 'omit',
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body && method !== 'GET' ? body : undefined,
      });
      const text = await res.text();
      setResult({
        status: res.status,
        statusText: res.statusText,
        ms: Math.round(performance.now() - started),
        headers: [...res.headers.entries()],
        body: text,
      });
    } catch (err) {
      setResult({ error: err.message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="try-it-title" id="try-it">
      <h2 id="try-it-title">Try it</h2>
      <form onSubmit={send} aria-labelledby="try-it-title">
        <div class="row">
          <Field label="Request method">
            <select value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
              {METHODS.filter((m) => m !== '*').map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Request path" hint={`Sent to /${slug}{path}; put path parameters in place`}>
            <input value={path} onInput={(e) => setPath(e.currentTarget.value)} />
          </Field>
        </div>
        <Field label="Request body">
          <textarea rows={3} value={body} onInput={(e) => setBody(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? 'Sending…' : 'Send request'}
        </button>
      </form>
      {result && (
        <section aria-label="Response" class="response">
          {result.error ? (
            <p class="error-box" role="alert">{result.error}</p>
          ) : (
            <>
              <p>
                Status <strong data-testid="try-status">{result.status}</strong> {result.statusText} ·{' '}
                {result.ms} ms
              </p>
              <details>
                <summary>Headers ({result.headers.length})</summary>
                <dl class="headers">
                  {result.headers.map(([k, v]) => (
                    <div key={k}>
                      <dt>{k}</dt>
                      <dd>{v}</dd>
                    </div>
                  ))}
                </dl>
              </details>
              <pre aria-label="Response body">{result.body}</pre>
            </>
          )}
        </section>
      )}
    </section>
  );
}
