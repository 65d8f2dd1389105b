// The cluster's nodes (owners and admins): state, version, heartbeat, slots.
// A server without the nodes endpoint (404) shows that clearly instead of failing.
import { get } from '../api.js';
import { Empty, ErrorBox, Loading, Status, useLoad, when } from '../ui.jsx';

export function Nodes() {
  const load = useLoad(() => get('nodes'), []);
  return (
    <main>
      <h1>Cluster nodes</h1>
      {load.loading && !load.data && <Loading what="Loading nodes" />}
      {load.error && load.error.status === 404 && (
        <Empty>This server does not report cluster nodes (no nodes endpoint): it runs as a single node.</Empty>
      )}
      {load.error && load.error.status !== 404 && <ErrorBox error={load.error} />}
      {load.data && load.data.nodes.length === 0 && <Empty>No nodes have reported yet.</Empty>}
      {load.data && load.data.nodes.length > 0 && (
        <table>
          <caption class="sr-only">Nodes</caption>
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">Address</th>
              <th scope="col">State</th>
              <th scope="col">Version</th>
              <th scope="col">Started</th>
              <th scope="col">Last seen</th>
              <th scope="col">Slots in use</th>
            </tr>
          </thead>
          <tbody>
            {load.data.nodes.map((n) => (
              <tr key={n.id}>
                <td>
                  <code>{n.id}</code>
                </td>
                <td>{n.address}</td>
                <td>
                  <Status value={n.state} />
                </td>
                <td>{n.version}</td>
                <td>{when(n.started_at)}</td>
                <td>{when(n.last_seen_at)}</td>
                <td>
                  {n.in_flight} / {n.slots}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
