// An app's key-value data: list by prefix, view, set (JSON) and delete keys.
import { useState } from 'preact/hooks';
import { del, enc, get, put, query } from '../api.js';
import { Empty, Field, Loaded, formErrors, useLoad, when } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

export function Kv({ slug }) {
  const [prefix, setPrefix] = useState('');
  const load = useLoad(() => get(`apps/${enc(slug)}/kv${query({ prefix, limit: 100 })}`), [slug, prefix]);
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [errors, setErrors] = useState({});
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    let parsed;
    try {
      parsed = JSON.parse(value);
    } catch {
      setErrors({ value: 'value: not valid JSON (quote strings: "text")' });
      return;
    }
    try {
      await put(`apps/${enc(slug)}/kv/${enc(key)}`, { value: parsed });
      load.reload();
    } catch (err) {
      setErrors(formErrors(err, ['key', 'value']));
    }
  };
  return (
    <AppLayout slug={slug} tab="KV" title={`KV data of ${slug}`}>
      <Field label="Key prefix">
        <input value={prefix} onInput={(e) => setPrefix(e.currentTarget.value)} />
      </Field>
      <Loaded load={load} what="Loading keys">
        {(data) =>
          data.entries.length === 0 ? (
            <Empty>No keys{prefix ? ` starting with "${prefix}"` : ''}.</Empty>
          ) : (
            <table>
              <caption class="sr-only">Keys</caption>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Value</th>
                  <th scope="col">Updated</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.entries.map((en) => (
                  <tr key={en.key}>
                    <td>
                      <code>{en.key}</code>
                    </td>
                    <td>
                      <code class="clip">{JSON.stringify(en.value)}</code>
                    </td>
                    <td>{when(en.updated_at)}</td>
                    <td class="actions">
                      <button
                        type="button"
                        class="secondary"
                        onClick={() => {
                          setKey(en.key);
                          setValue(JSON.stringify(en.value, null, 2));
                        }}
                      >
                        Edit key {en.key}
                      </button>
                      <button
                        type="button"
                        class="danger"
                        onClick={async () => {
                          await del(`apps/${enc(slug)}/kv/${enc(en.key)}`);
                          load.reload();
                        }}
                      >
                        Delete key {en.key}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <section aria-labelledby="set-key">
        <h2 id="set-key">Set a key</h2>
        <form onSubmit={submit}>
          <Field label="Key" error={errors.key}>
            <input value={key} required onInput={(e) => setKey(e.currentTarget.value)} />
          </Field>
          <Field label="Value (JSON)" error={errors.value}>
            <textarea rows={4} value={value} required onInput={(e) => setValue(e.currentTarget.value)} />
          </Field>
          {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
          <button type="submit">Save key</button>
        </form>
      </section>
    </AppLayout>
  );
}
