// An app's invocations: filter by script and status, and watch new ones arrive
// live (Server-Sent Events from the app's log stream).
import { useEffect, useState } from 'preact/hooks';
import { enc, get, query } from '../api.js';
import { Empty, ErrorBox, Field, Loading, Status, ms, when } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

const STATUSES = ['', 'queued', 'running', 'succeeded', 'failed', 'killed', 'timed_out', 'dead'];

export function Invocations({ slug }) {
  const [scripts, setScripts] = useState([]);
  const [script, setScript] = useState('');
  const [status, setStatus] = useState('');
  const [rows, setRows] = useState(null);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState('connecting');
  const [lines, setLines] = useState([]);

  useEffect(() => {
    get(`apps/${enc(slug)}/scripts`).then((r) => setScripts(r.scripts), () => {});
  }, [slug]);

  useEffect(() => {
    setRows(null);
    get(`apps/${enc(slug)}/invocations${query({ script, status, limit: 50 })}`).then((r) => {
      setRows(r.invocations);
      setNext(r.next ?? null);
    }, setError);
  }, [slug, script, status]);

  // New runs arrive over SSE and are prepended when they pass the filters.
  useEffect(() => {
    const es = new EventSource(`/api/v1/admin/apps/${enc(slug)}/logs/stream${query({ script })}`);
    es.onopen = () => setLive('live');
    es.onerror = () => setLive('reconnecting');
    es.addEventListener('invocation', (ev) => {
      let inv;
      try {
        inv = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (status && inv.status !== status) return;
      setRows((old) => [inv, ...(old ?? []).filter((r) => r.id !== inv.id)].slice(0, 200));
    });
    es.addEventListener('log', (ev) => {
      try {
        const entry = JSON.parse(ev.data);
        setLines((old) => [...old, entry].slice(-200));
      } catch {
        // A frame that is not JSON is not ours to show.
      }
    });
    return () => es.close();
  }, [slug, script, status]);

  const older = async () => {
    try {
      const r = await get(`apps/${enc(slug)}/invocations${query({ script, status, limit: 50, before: next })}`);
      setRows((old) => [...(old ?? []), ...r.invocations.filter((i) => !(old ?? []).some((o) => o.id === i.id))]);
      setNext(r.next ?? null);
    } catch (err) {
      setError(err);
    }
  };
  const names = Object.fromEntries(scripts.map((s) => [s.id, s.name]));
  return (
    <AppLayout slug={slug} tab="Invocations" title={`Invocations of ${slug}`}>
      <form class="row filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Filter by script">
          <select value={script} onChange={(e) => setScript(e.currentTarget.value)}>
            <option value="">All scripts</option>
            {scripts.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Filter by status">
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || 'Any status'}
              </option>
            ))}
          </select>
        </Field>
      </form>
      <p class="live" role="status">
        Live updates: {live}
      </p>
      <section aria-labelledby="live-log">
        <h2 id="live-log">Live log</h2>
        {lines.length === 0 ? (
          <p class="empty">Log lines of new runs appear here as they happen.</p>
        ) : (
          <ol class="logs live-log" aria-labelledby="live-log">
            {lines.map((l, i) => (
              <li key={i} class={`log-${l.line.level}`}>
                <span class="level">{names[l.script_id] ?? 'script'}</span> <span class="level">{l.line.level}</span>{' '}
                {l.line.message}
              </li>
            ))}
          </ol>
        )}
      </section>
      <h2>Runs</h2>
      <ErrorBox error={error} />
      {rows === null && !error && <Loading what="Loading invocations" />}
      {rows && rows.length === 0 && <Empty>No invocations yet. They appear here as they happen.</Empty>}
      {rows && rows.length > 0 && (
        <table>
          <caption class="sr-only">Invocations</caption>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Script</th>
              <th scope="col">Trigger</th>
              <th scope="col">Status</th>
              <th scope="col">Duration</th>
              <th scope="col">HTTP</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={`#/apps/${enc(slug)}/invocations/${enc(r.id)}`} aria-label={`Invocation ${r.id}`}>
                    {when(r.started_at)}
                  </a>
                </td>
                <td>{names[r.script_id] ?? r.script_id}</td>
                <td>{r.trigger}</td>
                <td>
                  <Status value={r.status} />
                </td>
                <td>{ms(r.duration_ms)}</td>
                <td>{r.response_status ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && next != null && (
        <button type="button" class="secondary" onClick={older}>
          Load older runs
        </button>
      )}
    </AppLayout>
  );
}
