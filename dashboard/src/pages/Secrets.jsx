// An app's secrets: names and timestamps only; set (create or replace) and delete.
import { useState } from 'preact/hooks';
import { del, enc, get, put } from '../api.js';
import { Empty, Field, Loaded, formErrors, useLoad, when } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

export function Secrets({ slug }) {
  const load = useLoad(() => get(`apps/${enc(slug)}/secrets`), [slug]);
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [errors, setErrors] = useState({});
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      await put(`apps/${enc(slug)}/secrets/${enc(name)}`, { value });
      setName('');
      setValue('');
      load.reload();
    } catch (err) {
      setErrors(formErrors(err, ['name', 'value']));
    }
  };
  return (
    <AppLayout slug={slug} tab="Secrets" title={`Secrets of ${slug}`}>
      <Loaded load={load} what="Loading secrets">
        {(data) =>
          data.secrets.length === 0 ? (
            <Empty>No secrets yet.</Empty>
          ) : (
            <table>
              <caption class="sr-only">Secrets</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Updated</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.secrets.map((s) => (
                  <tr key={s.name}>
                    <td>
                      <code>{s.name}</code>
                    </td>
                    <td>{when(s.updated_at)}</td>
                    <td>
                      <button
                        type="button"
                        class="danger"
                        onClick={async () => {
                          await del(`apps/${enc(slug)}/secrets/${enc(s.name)}`);
                          load.reload();
                        }}
                      >
                        Delete secret {s.name}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <section aria-labelledby="set-secret">
        <h2 id="set-secret">Set a secret</h2>
        <form onSubmit={submit}>
          <Field label="Secret name" error={errors.name}>
            <input value={name} required onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <Field label="Secret value" error={errors.value} hint="Write-only: it is never shown again.">
            <input type="password" autocomplete="off" value={value} required onInput={(e) => setValue(e.currentTarget.value)} />
          </Field>
          {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
          <button type="submit">Save secret</button>
        </form>
      </section>
    </AppLayout>
  );
}
