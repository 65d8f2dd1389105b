// The audit view (owners and admins): who did what to which resource, filtered by
// app and actor.
import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { Empty, Field, Loaded, useLoad, when } from '../ui.jsx';

export function Audit() {
  // Drafts follow typing; the filter applies on Enter or leaving the field.
  const [draft, setDraft] = useState({ app: '', actor: '' });
  const [app, setApp] = useState('');
  const [actor, setActor] = useState('');
  const load = useLoad(() => get(`audit${query({ app, actor })}`), [app, actor]);
  return (
    <main>
      <h1>Audit</h1>
      <form class="row filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="App (id or slug)">
          <input
            value={draft.app}
            onInput={(e) => setDraft({ ...draft, app: e.currentTarget.value })}
            onChange={(e) => setApp(e.currentTarget.value)}
          />
        </Field>
        <Field label="Actor (user id)">
          <input
            value={draft.actor}
            onInput={(e) => setDraft({ ...draft, actor: e.currentTarget.value })}
            onChange={(e) => setActor(e.currentTarget.value)}
          />
        </Field>
      </form>
      <Loaded load={load} what="Loading audit entries">
        {(data) =>
          data.entries.length === 0 ? (
            <Empty>No audit entries match.</Empty>
          ) : (
            <table>
              <caption class="sr-only">Audit entries</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Resource</th>
                  <th scope="col">Summary</th>
                </tr>
              </thead>
              <tbody>
                {data.entries.map((en) => (
                  <tr key={en.position}>
                    <td>{when(en.at)}</td>
                    <td>{en.actor ? en.actor.username ?? en.actor.id : '—'}</td>
                    <td>{en.action}</td>
                    <td>
                      {en.resource ? `${en.resource.kind} ${en.resource.id ?? ''}` : '—'}
                    </td>
                    <td>{typeof en.summary === 'string' ? en.summary : JSON.stringify(en.summary)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
    </main>
  );
}
