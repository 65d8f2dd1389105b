// One app's scripts, and a form to add one (then on to its editor).
import { useState } from 'preact/hooks';
import { del, enc, get, patch, post } from '../api.js';
import { navigate } from '../router.js';
import { Empty, Field, Loaded, formErrors, useLoad, when } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

const TEMPLATE = `// ctx.request, ctx.params and ctx.app are in scope.
let name = ctx.params.name ?? "world";
#{ hello: name }
`;

export function AppScripts({ slug }) {
  const load = useLoad(() => get(`apps/${enc(slug)}/scripts`), [slug]);
  return (
    <AppLayout slug={slug} tab="Scripts" title={`App ${slug}`}>
      <h2>Scripts</h2>
      <Loaded load={load} what="Loading scripts">
        {(data) =>
          data.scripts.length === 0 ? (
            <Empty>No scripts yet.</Empty>
          ) : (
            <table>
              <caption class="sr-only">Scripts</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Live version</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {data.scripts.map((s) => (
                  <tr key={s.id}>
                    <td>
                      <a href={`#/apps/${enc(slug)}/scripts/${enc(s.id)}`}>{s.name}</a>
                    </td>
                    <td>{s.kind}</td>
                    <td>
                      v{s.version} of {s.latest_version}
                    </td>
                    <td>{when(s.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <CreateScript slug={slug} />
      <Settings slug={slug} />
      <DeleteApp slug={slug} />
    </AppLayout>
  );
}

function CreateScript({ slug }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState('endpoint');
  const [errors, setErrors] = useState({});
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      const s = await post(`apps/${enc(slug)}/scripts`, { name, kind, source: TEMPLATE });
      navigate(`/apps/${enc(slug)}/scripts/${enc(s.id)}`);
    } catch (err) {
      setErrors(formErrors(err, ['name', 'kind']));
    }
  };
  return (
    <section aria-labelledby="new-script">
      <h2 id="new-script">New script</h2>
      <form onSubmit={submit}>
        <Field label="Script name" error={errors.name}>
          <input value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Kind" error={errors.kind}>
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="endpoint">endpoint</option>
            <option value="module">module</option>
          </select>
        </Field>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        <button type="submit">Create script</button>
      </form>
    </section>
  );
}

function DeleteApp({ slug }) {
  const [error, setError] = useState('');
  const remove = async () => {
    if (!window.confirm(`Delete app ${slug}, its scripts, routes and triggers? Its slug becomes free.`)) return;
    try {
      await del(`apps/${enc(slug)}`);
      navigate('/');
    } catch (err) {
      setError(err.message);
    }
  };
  return (
    <section aria-labelledby="delete-app">
      <h2 id="delete-app">Delete app</h2>
      {error && <p class="error-box" role="alert">{error}</p>}
      <button type="button" class="danger" onClick={remove}>
        Delete app {slug}
      </button>
    </section>
  );
}

/** The app's display name and its custom domains. */
function Settings({ slug }) {
  const load = useLoad(() => get(`apps/${enc(slug)}`), [slug]);
  const [name, setName] = useState(null);
  const [domain, setDomain] = useState('');
  const [errors, setErrors] = useState({});
  const [saved, setSaved] = useState('');
  const rename = async (e) => {
    e.preventDefault();
    setErrors({});
    setSaved('');
    try {
      await patch(`apps/${enc(slug)}`, { name });
      setSaved('Name saved.');
      load.reload();
    } catch (err) {
      setErrors(formErrors(err, ['name']));
    }
  };
  const addDomain = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      await post(`apps/${enc(slug)}/domains`, { domain });
      setDomain('');
      load.reload();
    } catch (err) {
      setErrors(formErrors(err, ['domain']));
    }
  };
  // The scripts list above already says when the app cannot be loaded.
  if (load.error) return null;
  return (
    <section aria-labelledby="app-settings">
      <h2 id="app-settings">Settings</h2>
      <Loaded load={load} what="Loading the app">
        {(app) => (
          <>
            <form onSubmit={rename} class="row">
              <Field label="Display name" error={errors.name}>
                <input value={name ?? app.name ?? ''} onInput={(e) => setName(e.currentTarget.value)} />
              </Field>
              <button type="submit">Save name</button>
            </form>
            {saved && <p class="ok" role="status">{saved}</p>}
            <h3 id="domains">Custom domains</h3>
            {app.domains.length === 0 ? (
              <p class="empty">No custom domains: the app answers at /{slug}/….</p>
            ) : (
              <ul aria-labelledby="domains">
                {app.domains.map((d) => (
                  <li key={d}>
                    <code>{d}</code>{' '}
                    <button
                      type="button"
                      class="danger"
                      onClick={async () => {
                        await del(`apps/${enc(slug)}/domains/${enc(d)}`);
                        load.reload();
                      }}
                    >
                      Remove domain {d}
                    </button>
                  </li>
                ))}
              </ul>
            )}
            <form onSubmit={addDomain} class="row">
              <Field label="Domain" error={errors.domain} hint="e.g. api.example.com, pointed at this server">
                <input value={domain} required onInput={(e) => setDomain(e.currentTarget.value)} />
              </Field>
              <button type="submit">Add domain</button>
            </form>
            {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
          </>
        )}
      </Loaded>
    </section>
  );
}
