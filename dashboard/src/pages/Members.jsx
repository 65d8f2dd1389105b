// An app's members and their roles (viewer, developer, admin).
import { useEffect, useState } from 'preact/hooks';
import { del, enc, get, patch, post } from '../api.js';
import { Empty, Field, Loaded, formErrors, useLoad } from '../ui.jsx';
import { AppLayout } from './AppLayout.jsx';

const ROLES = ['viewer', 'developer', 'admin'];

export function Members({ slug, me }) {
  const load = useLoad(() => get(`apps/${enc(slug)}/members`), [slug]);
  const [users, setUsers] = useState([]);
  const [userId, setUserId] = useState('');
  const [role, setRole] = useState('viewer');
  const [errors, setErrors] = useState({});
  const instanceAdmin = me.role === 'owner' || me.role === 'admin';
  useEffect(() => {
    if (instanceAdmin) get('users').then((r) => setUsers(r.users.filter((u) => u.role === 'member')), () => {});
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      await post(`apps/${enc(slug)}/members`, { user_id: userId, role });
      load.reload();
    } catch (err) {
      setErrors(formErrors(err, ['user_id', 'role']));
    }
  };
  return (
    <AppLayout slug={slug} tab="Members" title={`Members of ${slug}`}>
      <Loaded load={load} what="Loading members">
        {(data) =>
          data.members.length === 0 ? (
            <Empty>No members. Instance owners and admins can always manage every app.</Empty>
          ) : (
            <table>
              <caption class="sr-only">Members</caption>
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Role</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.members.map((m) => (
                  <tr key={m.user_id}>
                    <td>{m.username ?? m.user_id}</td>
                    <td>
                      <label class="sr-only" for={`role-${m.user_id}`}>
                        Role of {m.username ?? m.user_id}
                      </label>
                      <select
                        id={`role-${m.user_id}`}
                        value={m.role}
                        onChange={async (e) => {
                          await patch(`apps/${enc(slug)}/members/${enc(m.user_id)}`, { role: e.currentTarget.value });
                          load.reload();
                        }}
                      >
                        {ROLES.map((r) => (
                          <option key={r} value={r}>
                            {r}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <button
                        type="button"
                        class="danger"
                        onClick={async () => {
                          await del(`apps/${enc(slug)}/members/${enc(m.user_id)}`);
                          load.reload();
                        }}
                      >
                        Remove {m.username ?? m.user_id}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <section aria-labelledby="add-member">
        <h2 id="add-member">Add a member</h2>
        <form onSubmit={submit} class="row">
          {users.length > 0 ? (
            <Field label="User" error={errors.user_id}>
              <select value={userId} required onChange={(e) => setUserId(e.currentTarget.value)}>
                <option value="">Choose a user</option>
                {users.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.username}
                  </option>
                ))}
              </select>
            </Field>
          ) : (
            <Field label="User id" error={errors.user_id}>
              <input value={userId} required onInput={(e) => setUserId(e.currentTarget.value)} />
            </Field>
          )}
          <Field label="App role" error={errors.role}>
            <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </Field>
          {errors._form && <p class="error-box" role="alert">{errors._form}</p>}
          <button type="submit">Add member</button>
        </form>
      </section>
    </AppLayout>
  );
}
