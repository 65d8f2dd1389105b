// Instance users (owners and admins only): create, change role, set a password,
// disable or enable, delete.
import { useState } from 'preact/hooks';
import { del, enc, get, patch, post } from '../api.js';
import { Field, Loaded, formErrors, useLoad, when } from '../ui.jsx';

const ROLES = ['member', 'admin', 'owner'];

export function Users() {
  const load = useLoad(() => get('users'), []);
  const [rowError, setRowError] = useState('');
  const act = async (fn) => {
    setRowError('');
    try {
      await fn();
      load.reload();
    } catch (err) {
      setRowError(err.message);
    }
  };
  return (
    <main>
      <h1>Users</h1>
      {rowError && <p class="error-box" role="alert">{rowError}</p>}
      <Loaded load={load} what="Loading users">
        {(data) => (
          <table>
            <caption class="sr-only">Users</caption>
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {data.users.map((u) => (
                <tr key={u.id}>
                  <td>{u.username}</td>
                  <td>
                    <label class="sr-only" for={`urole-${u.id}`}>
                      Role of {u.username}
                    </label>
                    <select
                      id={`urole-${u.id}`}
                      value={u.role}
                      onChange={(e) => act(() => patch(`users/${enc(u.id)}`, { role: e.currentTarget.value }))}
                    >
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>
                    {u.disabled ? 'disabled' : 'active'}
                    {u.has_password ? '' : ' · no password'}
                  </td>
                  <td>{when(u.created_at)}</td>
                  <td class="actions">
                    <button
                      type="button"
                      class="secondary"
                      onClick={() => act(() => patch(`users/${enc(u.id)}`, { disabled: !u.disabled }))}
                    >
                      {u.disabled ? 'Enable' : 'Disable'} {u.username}
                    </button>
                    <button type="button" class="danger" onClick={() => act(() => del(`users/${enc(u.id)}`))}>
                      Delete {u.username}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      <CreateUser onCreated={load.reload} />
      <Loaded load={load} what="Loading users">
        {(data) => <SetPassword users={data.users} />}
      </Loaded>
    </main>
  );
}

function CreateUser({ onCreated }) {
  const [username, setUsername] = useState('');
  const [role, setRole] = useState('member');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState({});
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      await post('users', { username, role, ...(password ? { password } : {}) });
      setUsername('');
      setPassword('');
      onCreated();
    } catch (err) {
      setErrors(formErrors(err, ['username', 'role', 'password']));
    }
  };
  return (
    <section aria-labelledby="new-user">
      <h2 id="new-user">New user</h2>
      <form onSubmit={submit}>
        <Field label="New username" error={errors.username}>
          <input value={username} required onInput={(e) => setUsername(e.currentTarget.value)} />
        </Field>
        <Field label="Instance role" error={errors.role}>
          <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Initial password (optional)" error={errors.password}>
          <input type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        <button type="submit">Create user</button>
      </form>
    </section>
  );
}

function SetPassword({ users }) {
  const [userId, setUserId] = useState(users[0]?.id ?? '');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState({});
  const [done, setDone] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    setDone('');
    try {
      await patch(`users/${enc(userId)}`, { password });
      setPassword('');
      setDone('Password set.');
    } catch (err) {
      setErrors(formErrors(err, ['password']));
    }
  };
  return (
    <section aria-labelledby="set-password">
      <h2 id="set-password">Set a password</h2>
      <form onSubmit={submit}>
        <Field label="User whose password to set">
          <select value={userId} onChange={(e) => setUserId(e.currentTarget.value)}>
            {users.map((u) => (
              <option key={u.id} value={u.id}>
                {u.username}
              </option>
            ))}
          </select>
        </Field>
        <Field label="New password" error={errors.password}>
          <input type="password" autocomplete="new-password" value={password} required onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
        {done && <p class="ok" role="status">{done}</p>}
        <button type="submit">Set password</button>
      </form>
    </section>
  );
}
