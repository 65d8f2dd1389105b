// An app's triggers: the list (enable, disable, delete) and forms for cron (with
// the next five fire times previewed as you type), webhook and event triggers.
import { useEffect, useState } from 'preact/hooks';
import { del, enc, get, patch, post, query } from '../api.js';
import { Empty, Field, Loaded, formErrors, useLoad, when } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

export function Triggers({ slug }) {
  const load = useLoad(
    () => Promise.all([get(`apps/${enc(slug)}/triggers`), get(`apps/${enc(slug)}/scripts`)]),
    [slug],
  );
  return (
    <AppLayout slug={slug} tab="Triggers" title={`Triggers of ${slug}`}>
      <Loaded load={load} what="Loading triggers">
        {([triggers, scripts]) => {
          const names = Object.fromEntries(scripts.scripts.map((s) => [s.id, s.name]));
          return (
            <>
              <TriggerList triggers={triggers.triggers} names={names} reload={load.reload} />
              {scripts.scripts.length === 0 ? (
                <Empty>Create a script first, then trigger it.</Empty>
              ) : (
                <div class="cards">
                  <CronForm slug={slug} scripts={scripts.scripts} onAdded={load.reload} />
                  <WebhookForm slug={slug} scripts={scripts.scripts} onAdded={load.reload} />
                  <EventForm slug={slug} scripts={scripts.scripts} onAdded={load.reload} />
                </div>
              )}
            </>
          );
        }}
      </Loaded>
    </AppLayout>
  );
}

function describe(t) {
  if (t.kind === 'cron') return `${t.schedule} (${t.timezone}) · next ${when(t.next_fire_at)}`;
  if (t.kind === 'webhook') return `${t.url}${t.signed ? ' · signed' : ''}`;
  return `on ${t.event}`;
}

function TriggerList({ triggers, names, reload }) {
  if (triggers.length === 0) return <Empty>No triggers yet.</Empty>;
  return (
    <table>
      <caption class="sr-only">Triggers</caption>
      <thead>
        <tr>
          <th scope="col">Kind</th>
          <th scope="col">Script</th>
          <th scope="col">Details</th>
          <th scope="col">Enabled</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        {triggers.map((t) => (
          <tr key={t.id}>
            <td>{t.kind}</td>
            <td>{names[t.script_id] ?? t.script_id}</td>
            <td>{describe(t)}</td>
            <td>{t.enabled ? 'yes' : 'no'}</td>
            <td class="actions">
              <button
                type="button"
                class="secondary"
                onClick={async () => {
                  await patch(`triggers/${enc(t.id)}`, { enabled: !t.enabled });
                  reload();
                }}
              >
                {t.enabled ? 'Disable' : 'Enable'} {t.kind} trigger
              </button>
              <button
                type="button"
                class="danger"
                onClick={async () => {
                  await del(`triggers/${enc(t.id)}`);
                  reload();
                }}
              >
                Delete {t.kind} trigger
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ScriptSelect({ scripts, value, onChange, label = 'Script to run', error }) {
  return (
    <Field label={label} error={error}>
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {scripts.map((s) => (
          <option key={s.id} value={s.id}>
            {s.name}
          </option>
        ))}
      </select>
    </Field>
  );
}

const zones = (() => {
  try {
    return ['UTC', ...Intl.supportedValuesOf('timeZone').filter((z) => z !== 'UTC')];
  } catch {
    return ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo'];
  }
})();

function CronForm({ slug, scripts, onAdded }) {
  const [scriptId, setScriptId] = useState(scripts[0].id);
  const [schedule, setSchedule] = useState('0 */5 * * * *');
  const [timezone, setTimezone] = useState('UTC');
  const [preview, setPreview] = useState({ fires: [], error: null, field: null });
  const [errors, setErrors] = useState({});
  const [created, setCreated] = useState(null);

  // The preview follows the form as you type (debounced).
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      get(`cron/preview${query({ schedule, timezone, count: 5 })}`).then(
        (r) => live && setPreview({ fires: r.fires, error: null, field: null }),
        (e) => live && setPreview({ fires: [], error: e.message, field: e.field }),
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [schedule, timezone]);

  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      const r = await post(`apps/${enc(slug)}/triggers/cron`, { script_id: scriptId, schedule, timezone });
      setCreated(r);
      onAdded();
    } catch (err) {
      setErrors(formErrors(err, ['script_id', 'schedule', 'timezone']));
    }
  };
  const scheduleError = errors.schedule || (preview.field !== 'timezone' ? preview.error : null);
  const zoneError = errors.timezone || (preview.field === 'timezone' ? preview.error : null);
  return (
    <section aria-labelledby="new-cron" class="card">
      <h2 id="new-cron">Cron trigger</h2>
      <form onSubmit={submit}>
        <ScriptSelect scripts={scripts} value={scriptId} onChange={setScriptId} error={errors.script_id} />
        <Field label="Schedule" error={scheduleError} hint="sec min hour day month weekday">
          <input value={schedule} required onInput={(e) => setSchedule(e.currentTarget.value)} />
        </Field>
        <Field label="Time zone" error={zoneError}>
          <select value={timezone} onChange={(e) => setTimezone(e.currentTarget.value)}>
            {zones.map((z) => (
              <option key={z} value={z}>
                {z}
              </option>
            ))}
          </select>
        </Field>
        <div aria-live="polite">
          {preview.fires.length > 0 && (
            <>
              <h3 id="next-fires">Next fire times</h3>
              <ol aria-labelledby="next-fires" class="fires">
                {preview.fires.map((f) => (
                  <li key={f}>
                    <time dateTime={f}>{f}</time>
                  </li>
                ))}
              </ol>
            </>
          )}
        </div>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        {created && (
          <p class="ok" role="status">
            Cron trigger added; next fire {created.next_fire_at ?? '—'}.
          </p>
        )}
        <button type="submit">Add cron trigger</button>
      </form>
    </section>
  );
}

function randomSecret() {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function WebhookForm({ slug, scripts, onAdded }) {
  const [scriptId, setScriptId] = useState(scripts[0].id);
  const [signed, setSigned] = useState(true);
  const [errors, setErrors] = useState({});
  const [created, setCreated] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    const secret = signed ? randomSecret() : undefined;
    try {
      const r = await post(`apps/${enc(slug)}/triggers/webhook`, {
        script_id: scriptId,
        ...(secret ? { secret } : {}),
      });
      setCreated({ url: `${window.location.origin}${r.url}`, secret });
      onAdded();
    } catch (err) {
      setErrors(formErrors(err, ['script_id', 'secret']));
    }
  };
  return (
    <section aria-labelledby="new-webhook" class="card">
      <h2 id="new-webhook">Webhook trigger</h2>
      <form onSubmit={submit}>
        <ScriptSelect scripts={scripts} value={scriptId} onChange={setScriptId} error={errors.script_id} />
        <div class="check">
          <input id="webhook-signed" type="checkbox" checked={signed} onChange={(e) => setSigned(e.currentTarget.checked)} />
          <label for="webhook-signed">Sign deliveries with a new secret</label>
        </div>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        {created && (
          <div class="once" role="status">
            <p>Webhook added. Copy these now: the secret is not shown again.</p>
            <dl>
              <dt>URL</dt>
              <dd>
                <code>{created.url}</code>
              </dd>
              {created.secret && (
                <>
                  <dt>Secret</dt>
                  <dd>
                    <code>{created.secret}</code>
                  </dd>
                </>
              )}
            </dl>
          </div>
        )}
        <button type="submit">Add webhook trigger</button>
      </form>
    </section>
  );
}

function EventForm({ slug, scripts, onAdded }) {
  const [scriptId, setScriptId] = useState(scripts[0].id);
  const [event, setEvent] = useState('');
  const [errors, setErrors] = useState({});
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      await post(`apps/${enc(slug)}/triggers/event`, { script_id: scriptId, event });
      setEvent('');
      onAdded();
    } catch (err) {
      setErrors(formErrors(err, ['script_id', 'event']));
    }
  };
  return (
    <section aria-labelledby="new-event" class="card">
      <h2 id="new-event">Event trigger</h2>
      <form onSubmit={submit}>
        <ScriptSelect scripts={scripts} value={scriptId} onChange={setScriptId} error={errors.script_id} />
        <Field label="Event name" error={errors.event} hint="e.g. order.paid">
          <input value={event} required onInput={(e) => setEvent(e.currentTarget.value)} />
        </Field>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        <button type="submit">Add event trigger</button>
      </form>
    </section>
  );
}
