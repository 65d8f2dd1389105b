// The script editor: edit and save (a new version; a compile error is marked at its
// line), the version history with rollback, and a side-by-side diff of any two.
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, enc, get, post, put } from '../api.js';
import { navigate } from '../router.js';
import { CodeEditor, DiffView } from '../editor.jsx';
import { ErrorBox, Loading, when } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

export function Script({ slug, id }) {
  const [script, setScript] = useState(null);
  const [versions, setVersions] = useState([]);
  // The text shown when loaded or rolled back; edits live in `edited` so typing
  // does not re-render the page.
  const [shown, setShown] = useState({ text: '', revision: 0 });
  const edited = useRef('');
  const show = (text) => {
    edited.current = text;
    setShown((old) => ({ text, revision: old.revision + 1 }));
  };
  const [loadError, setLoadError] = useState(null);
  const [compileError, setCompileError] = useState(null);
  const [message, setMessage] = useState('');
  const [saveError, setSaveError] = useState('');
  const [busy, setBusy] = useState(false);

  const refresh = async () => {
    const [s, v] = await Promise.all([get(`scripts/${enc(id)}`), get(`scripts/${enc(id)}/versions`)]);
    setScript(s);
    setVersions(v.versions);
    return s;
  };
  useEffect(() => {
    refresh().then((s) => show(s.source ?? ''), setLoadError);
  }, [id]);

  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setMessage('');
    setSaveError('');
    setCompileError(null);
    try {
      const s = await put(`scripts/${enc(id)}`, { source: edited.current });
      await refresh();
      setMessage(`Saved version ${s.version}.`);
    } catch (err) {
      if (err.code === 'compile_error') {
        setCompileError({ line: err.body.line, position: err.body.position, message: err.message });
      } else {
        setSaveError(err.message);
      }
    } finally {
      setBusy(false);
    }
  };

  const rollback = async (version) => {
    setMessage('');
    setSaveError('');
    try {
      await post(`scripts/${enc(id)}/rollback`, { version });
      const s = await refresh();
      show(s.source ?? '');
      setCompileError(null);
      setMessage(`Rolled back: version ${version} is live.`);
    } catch (err) {
      setSaveError(err.message);
    }
  };

  if (loadError) {
    return (
      <AppLayout slug={slug} tab="Scripts" title="Script">
        <ErrorBox error={loadError} />
      </AppLayout>
    );
  }
  if (!script) {
    return (
      <AppLayout slug={slug} tab="Scripts" title="Script">
        <Loading what="Loading script" />
      </AppLayout>
    );
  }
  return (
    <AppLayout slug={slug} tab="Scripts" title={`Script ${script.name}`}>
      <p>
        {script.kind} · live version <strong>{script.version}</strong> of {script.latest_version} ·
        id <code>{script.id}</code>
      </p>
      <form onSubmit={save} class="editor-form">
        <CodeEditor
          value={shown.text}
          revision={shown.revision}
          onChange={(text) => (edited.current = text)} label="Source" error={compileError} />
        {compileError && (
          <p class="field-error" role="alert">
            Line {compileError.line}
            {compileError.position ? `, column ${compileError.position}` : ''}: {compileError.message}
          </p>
        )}
        {saveError && <p class="error-box" role="alert">{saveError}</p>}
        {message && <p class="ok" role="status">{message}</p>}
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Save new version'}
        </button>
      </form>
      <Versions versions={versions} onRollback={rollback} />
      <Diff versions={versions} />
      <section aria-labelledby="delete-script">
        <h2 id="delete-script">Delete</h2>
        <p>Deleting a script removes its routes too; its history stays in the event log.</p>
        <button
          type="button"
          class="danger"
          onClick={async () => {
            if (!window.confirm(`Delete script ${script.name} and its routes?`)) return;
            try {
              await del(`scripts/${enc(id)}`);
              navigate(`/apps/${enc(slug)}`);
            } catch (err) {
              setSaveError(err.message);
            }
          }}
        >
          Delete script {script.name}
        </button>
      </section>
    </AppLayout>
  );
}

function Versions({ versions, onRollback }) {
  return (
    <section aria-labelledby="versions">
      <h2 id="versions">Versions</h2>
      <table>
        <caption class="sr-only">Versions</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Saved</th>
            <th scope="col">State</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version}>
              <td>v{v.version}</td>
              <td>{when(v.saved_at)}</td>
              <td>{v.live ? 'live' : ''}</td>
              <td>
                {!v.live && (
                  <button type="button" class="secondary" onClick={() => onRollback(v.version)}>
                    Roll back to version {v.version}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Diff({ versions }) {
  const numbers = versions.map((v) => v.version);
  const latest = numbers[0] ?? 1;
  const [left, setLeft] = useState(numbers[1] ?? latest);
  const [right, setRight] = useState(latest);
  useEffect(() => {
    setLeft(numbers[1] ?? latest);
    setRight(latest);
  }, [versions.length]);
  const source = (n) => versions.find((v) => v.version === Number(n))?.source ?? '';
  if (versions.length < 2) {
    return (
      <section aria-labelledby="diff">
        <h2 id="diff">Compare versions</h2>
        <p class="empty">Save a second version to compare.</p>
      </section>
    );
  }
  return (
    <section aria-labelledby="diff">
      <h2 id="diff">Compare versions</h2>
      <div class="row">
        <label>
          Left version{' '}
          <select value={left} onChange={(e) => setLeft(Number(e.currentTarget.value))}>
            {numbers.map((n) => (
              <option key={n} value={n}>
                v{n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Right version{' '}
          <select value={right} onChange={(e) => setRight(Number(e.currentTarget.value))}>
            {numbers.map((n) => (
              <option key={n} value={n}>
                v{n}
              </option>
            ))}
          </select>
        </label>
      </div>
      <DiffView
        left={source(left)}
        right={source(right)}
        leftLabel={`Version ${left}`}
        rightLabel={`Version ${right}`}
      />
    </section>
  );
}
