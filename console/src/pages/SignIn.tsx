// Sign in and sign up: email and password; on success, back to where the user was going.
import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { describeError } from '../api/client';
import { ErrorLine, Field, PageTitle } from '../components/ui';
import { useServices } from '../context';

/** Only paths of this console, never another origin (an open redirect). */
export function safeNext(next: string | undefined): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function SignInPage({ mode }: { mode: 'signin' | 'signup' }) {
  const { api } = useServices();
  const { query, route } = useLocation();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signUp = mode === 'signup';
  const next = safeNext(query.next);
  const other = `${signUp ? '/signin' : '/signup'}${query.next ? `?next=${encodeURIComponent(next)}` : ''}`;

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (signUp) await api.signUp(email.trim(), password);
      else await api.signIn(email.trim(), password);
      route(next, true);
    } catch (err) {
      setError(describeError(signUp ? 'Signing up' : 'Signing in', err));
      setBusy(false);
    }
  };

  return (
    <section class="narrow">
      <PageTitle>{signUp ? 'Create your account' : 'Sign in'}</PageTitle>
      {query.next && !signUp && <p>Sign in to go on where you were.</p>}
      <form onSubmit={submit} aria-describedby="auth-error">
        <Field
          label="Email"
          id="email"
          type="email"
          autoComplete={signUp ? 'email' : 'username'}
          required
          value={email}
          onInput={(e) => setEmail(e.currentTarget.value)}
        />
        <Field
          label="Password"
          id="password"
          type="password"
          autoComplete={signUp ? 'new-password' : 'current-password'}
          required
          minLength={signUp ? 8 : undefined}
          maxLength={256}
          hint={signUp ? '8 to 256 characters' : undefined}
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <div id="auth-error">
          <ErrorLine error={error} />
        </div>
        <button type="submit" disabled={busy}>
          {signUp ? 'Sign up' : 'Sign in'}
        </button>
      </form>
      <p>
        {signUp ? 'Already have an account? ' : 'No account yet? '}
        <a href={other}>{signUp ? 'Sign in' : 'Create one'}</a>
      </p>
    </section>
  );
}
