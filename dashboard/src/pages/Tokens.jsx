// The caller's API tokens: list, revoke, and mint one (its value shown once).
import { useState } from 'preact/hooks';
import { del, enc, get, post } from '../api.js';
import { Empty, Field, Loaded, formErrors, useLoad, when } from '../ui.jsx';

const SCOPES = ['admin', 'apps:read', 'apps:write', 'scripts:write', 'logs:read', 'secrets:write', 'users:manage'];

export function Tokens() {
  const load = useLoad(() => get('tokens'), []);
  return (
    <main>
      <h1>API tokens</h1>
      <Loaded load={load} what="Loading tokens">
        {(data) => {
          const tokens = data.tokens.filter((t) => !t.revoked && t.name !== 'session');
          return tokens.length === 0 ? (
            <Empty>No API tokens.</Empty>
          ) : (
            <table>
              <caption class="sr-only">Tokens</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {tokens.map((t) => (
                  <tr key={t.id}>
                    <td>{t.name}</td>
                    <td>{t.scopes.join(', ')}</td>
                    <td>{t.expires_at ? when(t.expires_at) : 'never'}</td>
                    <td>{when(t.created_at)}</td>
                    <td>
                      <button
                        type="button"
                        class="danger"
                        onClick={async () => {
                          await del(`tokens/${enc(t.id)}`);
                          load.reload();
                        }}
                      >
                        Revoke {t.name}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          );
        }}
      </Loaded>
      <NewToken onCreated={load.reload} />
    </main>
  );
}

function NewToken({ onCreated }) {
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState(['apps:read']);
  const [errors, setErrors] = useState({});
  const [created, setCreated] = useState(null);
  const toggle = (s) => setScopes((old) => (old.includes(s) ? old.filter((x) => x !== s) : [...old, s]));
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      const r = await post('tokens', { name, scopes });
      setCreated(r.token);
      setName('');
      onCreated();
    } catch (err) {
      setErrors(formErrors(err, ['name', 'scopes']));
    }
  };
  return (
    <section aria-labelledby="new-token">
      <h2 id="new-token">New token</h2>
      <form onSubmit={submit}>
        <Field label="Token name" error={errors.name}>
          <input value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <div class="check" key={s}>
              <input id={`scope-${s}`} type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} />
              <label for={`scope-${s}`}>{s}</label>
            </div>
          ))}
          {errors.scopes && <p class="field-error" role="alert">{errors.scopes}</p>}
        </fieldset>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        {created && (
          <div class="once" role="status">
            <p>Token created. Copy it now: it is not shown again.</p>
            <code aria-label="New token value">{created}</code>
          </div>
        )}
        <button type="submit">Create token</button>
      </form>
    </section>
  );
}
