/** The shell: a left nav of real links, the page, and the sign-in screen while signed out. */
import { useEffect, useState } from 'react';
import type { UiPath } from '@weft/protocol/ui-paths';
import { currentSession, loadSession, onSignedOut, signOut } from './api/client.js';
import { Link, usePath } from './router.js';
import { ApiKeys } from './pages/api-keys.js';
import { Audit } from './pages/audit.js';
import { AuthKeys } from './pages/auth-keys.js';
import { Dashboard } from './pages/dashboard.js';
import { Devices } from './pages/devices.js';
import { Pending } from './pages/pending.js';
import { Policy } from './pages/policy.js';
import { SignIn } from './pages/sign-in.js';
import { Users } from './pages/users.js';

const PAGES: { path: UiPath; label: string; Page: () => React.JSX.Element }[] = [
  { path: '/', label: 'Dashboard', Page: Dashboard },
  { path: '/devices', label: 'Devices', Page: Devices },
  { path: '/pending', label: 'Pending devices', Page: Pending },
  { path: '/users', label: 'Users', Page: Users },
  { path: '/auth-keys', label: 'Auth keys', Page: AuthKeys },
  { path: '/api-keys', label: 'API keys', Page: ApiKeys },
  { path: '/policy', label: 'Access policy', Page: Policy },
  { path: '/audit', label: 'Audit log', Page: Audit },
];

export function App() {
  // null while the server is asked who is signed in.
  const [signedIn, setSignedIn] = useState<boolean | null>(currentSession() ? true : null);
  const path = usePath();
  useEffect(() => onSignedOut(() => setSignedIn(false)), []);
  useEffect(() => {
    loadSession().then((s) => setSignedIn(s !== null), () => setSignedIn(false));
  }, []);
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0]!;
  useEffect(() => {
    document.title = `${page.label} · Weft admin`;
  }, [page]);
  if (signedIn === null) return null;
  if (!signedIn) return <SignIn />;
  return (
    <div className="layout">
      <nav aria-label="Main">
        <p className="brand">Weft</p>
        <ul>
          {PAGES.map((p) => (
            <li key={p.path}>
              <Link to={p.path} current={p.path === path}>
                {p.label}
              </Link>
            </li>
          ))}
        </ul>
        <button type="button" className="sign-out" onClick={() => void signOut()}>
          Sign out
        </button>
      </nav>
      <main>
        <page.Page key={page.path} />
      </main>
    </div>
  );
}
