// The apps the caller can see, and a form to create one.
import { useState } from 'preact/hooks';
import { enc, get, post } from '../api.js';
import { navigate } from '../router.js';
import { Empty, Field, Loaded, formErrors, useLoad, when } from '../ui.jsx';

export function Apps({ me }) {
  const load = useLoad(() => get('apps'), []);
  const canCreate = me.role === 'owner' || me.role === 'admin';
  return (
    <main>
      <h1>Apps</h1>
      <Loaded load={load} what="Loading apps">
        {(data) =>
          data.apps.length === 0 ? (
            <Empty>No apps yet.{canCreate ? ' Create the first one below.' : ''}</Empty>
          ) : (
            <table>
              <caption class="sr-only">Apps</caption>
              <thead>
                <tr>
                  <th scope="col">Slug</th>
                  <th scope="col">Name</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {data.apps.map((a) => (
                  <tr key={a.id}>
                    <td>
                      <a href={`#/apps/${enc(a.slug)}`}>{a.slug}</a>
                    </td>
                    <td>{a.name}</td>
                    <td>{when(a.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      {canCreate && <CreateApp />}
    </main>
  );
}

function CreateApp() {
  const [slug, setSlug] = useState('');
  const [name, setName] = useState('');
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const app = await post('apps', { slug, ...(name ? { name } : {}) });
      navigate(`/apps/${enc(app.slug)}`);
    } catch (err) {
      setErrors(formErrors(err, ['slug', 'name']));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="new-app">
      <h2 id="new-app">New app</h2>
      <form onSubmit={submit}>
        <Field label="Slug" error={errors.slug} hint="Lowercase letters, digits and '-'; the app answers at /{slug}/…">
          <input value={slug} required onInput={(e) => setSlug(e.currentTarget.value)} />
        </Field>
        <Field label="Name (optional)" error={errors.name}>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        <button type="submit" disabled={busy}>
          Create app
        </button>
      </form>
    </section>
  );
}
