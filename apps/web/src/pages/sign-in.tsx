/**
 * Signed out: the way to the server's sign-in page (a local account, or the identity provider),
 * which brings the person back here. The UI never handles a password.
 */
import { signInUrl } from '../api/client.js';

export function SignIn() {
  return (
    <main className="sign-in">
      <h1>Weft admin</h1>
      <p>You are not signed in, or your session ended.</p>
      <p>
        <a className="button primary" href={signInUrl()}>
          Sign in
        </a>
      </p>
      <p className="hint">
        No account yet? On the server: <code>weft-server admin set-password</code>, or configure your identity provider (README, "Signing in").
      </p>
    </main>
  );
}
