// The console's shell: navigation, the routes, the sign-in guard, and the live stream's life.
import type { ComponentType } from 'preact';
import { ErrorBoundary, LocationProvider, Route, Router, lazy, useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { PageTitle } from './components/ui';
import { type Services, ServicesContext, defaultServices, useServices } from './context';
import { KeysPage } from './pages/Keys';
import { LinksPage } from './pages/Links';
import { NotificationsPage } from './pages/Notifications';
import { ReportsPage } from './pages/Reports';
import { SignInPage } from './pages/SignIn';
import { WebhookPage } from './pages/Webhook';

// uPlot comes with the stats page only: the first load stays small.
const LinkStatsPage = lazy(() => import('./pages/LinkStats'));

const NAV = [
  ['/', 'Links'],
  ['/reports', 'Reports'],
  ['/notifications', 'Notifications'],
  ['/keys', 'API keys'],
  ['/webhook', 'Webhook'],
] as const;

/** A page that needs a session: without one, to sign-in and back here after. */
function Protected<P extends object>({ page: Page, ...props }: { page: ComponentType<P> } & P) {
  const { api } = useServices();
  const { url, route } = useLocation();
  const signedIn = api.signedIn;
  useEffect(() => {
    if (!signedIn) route(`/signin?next=${encodeURIComponent(url)}`, true);
  }, [signedIn, url]);
  return signedIn ? <Page {...(props as P)} /> : null;
}

// Route components are made once: one made during a render would remount its page (and lose
// what was typed) at every render of the shell.
const SignInRoute = () => <SignInPage mode="signin" />;
const SignUpRoute = () => <SignInPage mode="signup" />;
const LinksRoute = () => <Protected page={LinksPage} />;
const LinkStatsRoute = ({ code }: { code: string }) => <Protected page={LinkStatsPage} code={code} />;
const ReportsRoute = () => <Protected page={ReportsPage} />;
const NotificationsRoute = () => <Protected page={NotificationsPage} />;
const KeysRoute = () => <Protected page={KeysPage} />;
const WebhookRoute = () => <Protected page={WebhookPage} />;

function Shell() {
  const { api, live } = useServices();
  const { path, route } = useLocation();
  const [, setTick] = useState(0);
  const signedIn = api.signedIn;

  useEffect(() => {
    const offApi = api.subscribe(() => setTick((t) => t + 1));
    const offLive = live.subscribe(() => setTick((t) => t + 1));
    api.onSignedOut = () => {
      live.stop();
      const here = window.location.pathname + window.location.search;
      if (!here.startsWith('/signin') && !here.startsWith('/signup')) {
        route(`/signin?next=${encodeURIComponent(here)}`, true);
      }
    };
    return () => {
      offApi();
      offLive();
      api.onSignedOut = null;
    };
  }, []);

  useEffect(() => {
    if (signedIn) live.start();
    else live.stop();
  }, [signedIn]);

  const unread = live.received.filter((n) => !n.ackTime).length;
  const signOut = async () => {
    live.stop();
    await api.signOut().catch(() => {});
    route('/signin', true);
  };

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Kurt</span>
        {signedIn && (
          <>
            <nav aria-label="Main">
              <ul>
                {NAV.map(([href, label]) => (
                  <li key={href}>
                    <a href={href} aria-current={(href === '/' ? path === '/' || path.startsWith('/links') : path.startsWith(href)) ? 'page' : undefined}>
                      {label}
                      {href === '/notifications' && unread > 0 && <span class="badge"> ({unread} new)</span>}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
            <span class="who">{api.email}</span>
            <button type="button" class="secondary" onClick={signOut}>
              Sign out
            </button>
          </>
        )}
      </header>
      <main id="main">
        <ErrorBoundary>
          <Router>
            <Route path="/signin" component={SignInRoute} />
            <Route path="/signup" component={SignUpRoute} />
            <Route path="/" component={LinksRoute} />
            <Route path="/links/:code" component={LinkStatsRoute} />
            <Route path="/reports" component={ReportsRoute} />
            <Route path="/notifications" component={NotificationsRoute} />
            <Route path="/keys" component={KeysRoute} />
            <Route path="/webhook" component={WebhookRoute} />
            <Route default component={NotFound} />
          </Router>
        </ErrorBoundary>
      </main>
    </>
  );
}

function NotFound() {
  return (
    <section>
      <PageTitle>Not found</PageTitle>
      <p>
        No page here. <a href="/">Go to your links</a>.
      </p>
    </section>
  );
}

export function App({ services = defaultServices }: { services?: Services }) {
  return (
    <ServicesContext.Provider value={services}>
      <LocationProvider>
        <Shell />
      </LocationProvider>
    </ServicesContext.Provider>
  );
}
