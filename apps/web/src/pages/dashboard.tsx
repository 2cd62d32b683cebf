/**
 * Nodes online, offline and expired, the links direct / relayed / without a path / stale (one
 * summary request: counts, not the links), and the most recently seen: five small requests, no node list.
 */
import type { LinksSummary, NodePage } from '@weft/protocol';
import { api } from '../api/client.js';
import { ago, Empty, ErrorText, useLoad } from '../components/common.js';
import { Link } from '../router.js';

const count = async (status: string) => (await api<NodePage>('GET', `/api/v1/nodes?status=${status}&limit=1`)).total;

export function Dashboard() {
  const r = useLoad(async () => {
    const [online, offline, expired, recent, links] = await Promise.all([
      count('online'),
      count('offline'),
      count('expired'),
      api<NodePage>('GET', '/api/v1/nodes?sort=lastSeen&order=desc&limit=10'),
      api<LinksSummary>('GET', '/api/v1/links/summary'),
    ]);
    return { online, offline, expired, recent, links };
  }, 'dashboard');
  const d = r.data;
  return (
    <>
      <h1>Dashboard</h1>
      <ErrorText error={r.error} />
      <ul className="stats" aria-busy={r.loading}>
        <li>
          <span className="stat" data-testid="online-count">{d?.online ?? '…'}</span> online
        </li>
        <li>
          <span className="stat" data-testid="offline-count">{d?.offline ?? '…'}</span> offline
        </li>
        <li>
          <span className="stat">{d?.expired ?? '…'}</span> expired
        </li>
      </ul>
      <h2>Links</h2>
      {d && d.links.nodes === 0 ? (
        <Empty>No link reports yet: links appear here once agents report them.</Empty>
      ) : (
        <ul className="stats" aria-busy={r.loading} data-testid="links">
          <li>
            <span className="stat" data-testid="links-direct">{d?.links.direct ?? '…'}</span> direct
          </li>
          <li>
            <span className="stat" data-testid="links-relay">{d?.links.relay ?? '…'}</span> relayed
          </li>
          <li>
            <span className="stat" data-testid="links-none">{d?.links.none ?? '…'}</span> no path
          </li>
          <li>
            <span className="stat" data-testid="links-stale">{d?.links.stale ?? '…'}</span> stale (dead now)
          </li>
        </ul>
      )}
      <h2>Recently seen</h2>
      {d && d.recent.total === 0 ? (
        <Empty>
          No devices yet. Create an auth key on <Link to="/auth-keys">Auth keys</Link> and run <code>weft up --auth-key …</code> on a machine.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">User</th>
                <th scope="col">Status</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {d?.recent.items.map((n) => (
                <tr key={n.id}>
                  <td>{n.name}</td>
                  <td>{n.user}</td>
                  <td>{n.online ? 'online' : n.expired ? 'expired' : 'offline'}</td>
                  <td>{n.online ? 'now' : ago(n.lastSeen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
