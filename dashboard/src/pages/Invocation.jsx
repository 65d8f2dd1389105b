// One invocation: status, timing, error and log lines; a dead or failed
// asynchronous one can be redriven (queued again).
import { useState } from 'preact/hooks';
import { enc, get, post } from '../api.js';
import { Loaded, Status, ms, useLoad, when } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

export function Invocation({ slug, id }) {
  const load = useLoad(() => get(`invocations/${enc(id)}`), [id]);
  const [message, setMessage] = useState('');
  const [error, setError] = useState('');
  const redrive = async () => {
    setError('');
    try {
      const r = await post(`invocations/${enc(id)}/redrive`);
      setMessage(`Queued again as ${r.invocation_id}.`);
    } catch (err) {
      setError(err.message);
    }
  };
  return (
    <AppLayout slug={slug} tab="Invocations" title="Invocation">
      <p>
        <a href={`#/apps/${enc(slug)}/invocations`}>Back to invocations</a>
      </p>
      <Loaded load={load} what="Loading invocation">
        {(inv) => (
          <>
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{inv.id}</code>
              </dd>
              <dt>Status</dt>
              <dd>
                <Status value={inv.status} />
              </dd>
              <dt>Trigger</dt>
              <dd>{inv.trigger}</dd>
              <dt>Started</dt>
              <dd>{when(inv.started_at)}</dd>
              <dt>Duration</dt>
              <dd>{ms(inv.duration_ms)}</dd>
              <dt>HTTP status</dt>
              <dd>{inv.response_status ?? '—'}</dd>
            </dl>
            {inv.error && (
              <section aria-labelledby="inv-error">
                <h2 id="inv-error">Error</h2>
                <pre class="error-box">{JSON.stringify(inv.error, null, 2)}</pre>
              </section>
            )}
            {(inv.status === 'dead' || inv.status === 'failed') && (
              <button type="button" onClick={redrive}>
                Redrive invocation
              </button>
            )}
            {message && <p class="ok" role="status">{message}</p>}
            {error && <p class="error-box" role="alert">{error}</p>}
            <section aria-labelledby="inv-logs">
              <h2 id="inv-logs">Logs</h2>
              {(inv.logs ?? []).length === 0 ? (
                <p class="empty">No log lines.</p>
              ) : (
                <ol class="logs">
                  {inv.logs.map((l, i) => (
                    <li key={i} class={`log-${l.level}`}>
                      <span class="level">{l.level}</span> {l.message}
                    </li>
                  ))}
                </ol>
              )}
            </section>
          </>
        )}
      </Loaded>
    </AppLayout>
  );
}
