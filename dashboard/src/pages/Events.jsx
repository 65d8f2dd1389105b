// The event log browser (owners and admins): filter by stream, type, app and actor;
// page forward with `next`.
import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { Empty, Field, Loaded, useLoad, when } from '../ui.jsx';

export function Events() {
  // Drafts follow typing; the filters apply on Enter or leaving a field.
  const [draft, setDraft] = useState({ stream: '', type: '', app: '', actor: '' });
  const [filters, setFilters] = useState(draft);
  const [after, setAfter] = useState('');
  const load = useLoad(() => get(`events${query({ ...filters, after, limit: 50 })}`), [filters, after]);
  const field = (k) => ({
    value: draft[k],
    onInput: (e) => setDraft({ ...draft, [k]: e.currentTarget.value }),
    onChange: (e) => {
      setAfter('');
      setFilters({ ...filters, [k]: e.currentTarget.value });
    },
  });
  return (
    <main>
      <h1>Event log</h1>
      <form class="row filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Stream">
          <input {...field('stream')} />
        </Field>
        <Field label="Event type">
          <input {...field('type')} />
        </Field>
        <Field label="App (id or slug)">
          <input {...field('app')} />
        </Field>
        <Field label="Actor">
          <input {...field('actor')} />
        </Field>
      </form>
      <Loaded load={load} what="Loading events">
        {(data) =>
          data.events.length === 0 ? (
            <Empty>No events match.</Empty>
          ) : (
            <>
              <table>
                <caption class="sr-only">Events</caption>
                <thead>
                  <tr>
                    <th scope="col">Position</th>
                    <th scope="col">Stream</th>
                    <th scope="col">Type</th>
                    <th scope="col">Recorded</th>
                    <th scope="col">Data</th>
                  </tr>
                </thead>
                <tbody>
                  {data.events.map((ev) => (
                    <tr key={ev.position}>
                      <td>{ev.position}</td>
                      <td>
                        <code>{ev.stream}</code> v{ev.version}
                      </td>
                      <td>{ev.type}</td>
                      <td>{when(ev.recorded_at)}</td>
                      <td>
                        <details>
                          <summary>Data of event {ev.position}</summary>
                          <pre>{JSON.stringify({ data: ev.data, metadata: ev.metadata }, null, 2)}</pre>
                        </details>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {data.next != null && (
                <button type="button" class="secondary" onClick={() => setAfter(String(data.next))}>
                  Next page
                </button>
              )}
            </>
          )
        }
      </Loaded>
    </main>
  );
}
