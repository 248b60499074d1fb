// The shell: routes, the navigation (a drawer on phones), the live-connection dot, and the login guard.

import { type ComponentType, lazy, type ReactNode, Suspense, useEffect, useState, useSyncExternalStore } from "react";
import { BrowserRouter, Navigate, NavLink, Route, Routes, useLocation, useNavigate } from "react-router-dom";

import { api, ApiError, getToken, getUsername, logout, onAuthChange } from "./api/client";
import { queryClient } from "./api/queries";
import { allows, pageRole, useRole, visibleNav } from "./api/roles";
import { live, useConnectionState } from "./live/hooks";
import { ErrorBoundary } from "./components/ErrorBoundary";

// Pages load on first use: the shell comes first, the chart library with the first chart, the form library (react-hook-form,
// zod) with the first form (the login page is one).
const named = <K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) =>
  lazy(() => load().then((module) => ({ default: module[name] })));
const devices = () => import("./pages/Devices");
const dashboardList = () => import("./dashboards/List");
const dashboardPage = () => import("./dashboards/DashboardPage");
const automationList = () => import("./automation/List");
const automationEditors = () => import("./automation/Editors");
const GatewaysPage = named(devices, "GatewaysPage");
const GatewayPage = named(devices, "GatewayPage");
const NodesPage = named(devices, "NodesPage");
const NodePage = named(devices, "NodePage");
const SourcesPage = named(devices, "SourcesPage");
const FieldsPage = named(devices, "FieldsPage");
const FieldPage = named(devices, "FieldPage");
const DashboardsPage = named(dashboardList, "DashboardsPage");
const DashboardPage = named(dashboardPage, "DashboardPage");
const AutomationListPage = named(automationList, "AutomationListPage");
const AutomationEditorPage = named(automationEditors, "AutomationEditorPage");
const BackupPage = named(() => import("./pages/Backup"), "BackupPage");
const FirmwarePage = named(() => import("./pages/Firmware"), "FirmwarePage");
const users = () => import("./pages/Users");
const UsersPage = named(users, "UsersPage");
const UserEditorPage = named(users, "UserEditorPage");
const ProfilePage = named(users, "ProfilePage");
const ServiceTokensPage = named(() => import("./pages/Tokens"), "ServiceTokensPage");
const SettingsPage = named(() => import("./pages/Settings"), "SettingsPage");
const LoginPage = named(() => import("./pages/Login"), "LoginPage");
const overview = () => import("./pages/Overview");
const OverviewPage = named(overview, "OverviewPage");
const EventsPage = named(overview, "EventsPage");

const NAV: Array<[string, string]> = [
  ["/", "Overview"],
  ["/dashboards", "Dashboards"],
  ["/gateways", "Gateways"],
  ["/nodes", "Nodes"],
  ["/sources", "Sources"],
  ["/fields", "Fields"],
  ["/automation/task", "Tasks"],
  ["/automation/schedule", "Schedules"],
  ["/automation/handler", "Handlers"],
  ["/automation/forwardpayload", "Forward payloads"],
  ["/events", "Event log"],
  ["/firmware", "Firmware"],
  ["/backup", "Backup"],
  ["/users", "Users"],
  ["/tokens", "Service tokens"],
  ["/settings", "Settings"],
];

type AuthState = "checking" | "in" | "out";

/** Logged in when a token is held, or when the API answers without one (a stack without auth). */
function useAuth(): AuthState {
  const [state, setState] = useState<AuthState>(getToken() ? "in" : "checking");
  useEffect(() => {
    if (!getToken()) {
      api("/api/gateway?limit=1").then(
        () => setState("in"),
        (err: unknown) => setState(err instanceof ApiError && err.status === 401 ? "out" : "in"),
      );
    }
    return onAuthChange((loggedIn) => setState(loggedIn ? "in" : "out"));
  }, []);
  useEffect(() => {
    if (state === "in") live.restart();
    if (state === "out") {
      live.stop();
      queryClient.clear(); // the next user sees nothing of this one's
    }
  }, [state]);
  return state;
}

const PHONE = "(max-width: 800px)";
const subscribeWidth = (onChange: () => void) => {
  const query = window.matchMedia?.(PHONE);
  query?.addEventListener("change", onChange);
  return () => query?.removeEventListener("change", onChange);
};
/** Whether the phone layout is on (the menu is a drawer). */
export function useNarrow(): boolean {
  return useSyncExternalStore(subscribeWidth, () => Boolean(window.matchMedia?.(PHONE).matches), () => false);
}

const LIVE_TEXT = { open: "live", connecting: "connecting", closed: "offline" } as const;

function Shell({ children }: { children: ReactNode }) {
  const location = useLocation();
  // The drawer is open for the path it was opened on: following a link closes it.
  const [openAt, setOpenAt] = useState<string | null>(null);
  const open = openAt === location.pathname;
  const setOpen = (value: boolean) => setOpenAt(value ? location.pathname : null);
  const navigate = useNavigate();
  const connection = useConnectionState();
  const role = useRole();
  const narrow = useNarrow();
  return (
    <div className={`shell ${open ? "nav-open" : ""}`}>
      <a className="skip-link" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById("main")?.focus();
      }}>Skip to content</a>
      <header className="topbar">
        <button type="button" className="menu-button" aria-label="menu" aria-expanded={open} aria-controls="main-nav"
          onClick={() => setOpen(!open)}>
          ☰
        </button>
        <span className="brand">MyController</span>
        <span className={`live live-${connection}`} title={`live updates: ${LIVE_TEXT[connection]}`} data-state={connection}
          role="status">
          <span aria-hidden="true">● </span>{LIVE_TEXT[connection]}
        </span>
        <span className="user">
          {getUsername() ? <NavLink to="/profile" title="my profile">{getUsername()}</NavLink> : ""}
          {role && <span className="role-badge muted" data-role={role}> · {role}</span>}
        </span>
        {getToken() && (
          <button type="button" className="logout" onClick={async () => {
            await logout();
            navigate("/login");
          }}>
            Log out
          </button>
        )}
      </header>
      {/* A closed drawer is out of the tab order and of the accessibility tree (inert), not just off screen. */}
      <nav className="sidebar" aria-label="main" id="main-nav" inert={narrow && !open}>
        <div className="sidebar-links">
          {visibleNav(NAV, role).map(([to, label]) => (
            <NavLink key={to} to={to} end={to === "/"}>
              {label}
            </NavLink>
          ))}
        </div>
      </nav>
      <div className="nav-scrim" onClick={() => setOpen(false)} />
      <main className="content" id="main" tabIndex={-1}>
        <ErrorBoundary resetKey={location.pathname}>
          <Suspense fallback={<p className="muted">loading…</p>}>
            {allows(role, pageRole(location.pathname)) ? children : <NotForYou need={pageRole(location.pathname)} role={role} />}
          </Suspense>
        </ErrorBoundary>
      </main>
    </div>
  );
}

function NotForYou({ need, role }: { need: string; role: string | null }) {
  useEffect(() => {
    document.title = "Not for your role · MyController";
  }, []);
  return (
    <>
      <h1>Not for your role</h1>
      <p role="alert">This page is for the {need} role; yours is {role}.</p>
    </>
  );
}

function NotFound() {
  useEffect(() => {
    document.title = "Page not found · MyController";
  }, []);
  return <h1>Page not found</h1>;
}

function Guarded({ auth, children }: { auth: AuthState; children: ReactNode }) {
  const location = useLocation();
  if (auth === "checking") return <div className="content muted">loading…</div>;
  if (auth === "out") return <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  return <Shell>{children}</Shell>;
}

function AppRoutes() {
  const auth = useAuth();
  const page = (element: ReactNode) => <Guarded auth={auth}>{element}</Guarded>;
  return (
    <Routes>
      <Route path="/login" element={<Suspense fallback={null}><LoginPage /></Suspense>} />
      <Route path="/" element={page(<OverviewPage />)} />
      <Route path="/events" element={page(<EventsPage />)} />
      <Route path="/dashboards" element={page(<DashboardsPage />)} />
      <Route path="/dashboards/:id" element={page(<DashboardPage />)} />
      <Route path="/gateways" element={page(<GatewaysPage />)} />
      <Route path="/gateways/:id" element={page(<GatewayPage />)} />
      <Route path="/nodes" element={page(<NodesPage />)} />
      <Route path="/nodes/:id" element={page(<NodePage />)} />
      <Route path="/sources" element={page(<SourcesPage />)} />
      <Route path="/fields" element={page(<FieldsPage />)} />
      <Route path="/fields/:id" element={page(<FieldPage />)} />
      <Route path="/automation/:kind" element={page(<AutomationListPage />)} />
      <Route path="/automation/:kind/:id" element={page(<AutomationEditorPage />)} />
      <Route path="/firmware" element={page(<FirmwarePage />)} />
      <Route path="/backup" element={page(<BackupPage />)} />
      <Route path="/users" element={page(<UsersPage />)} />
      <Route path="/users/:id" element={page(<UserEditorPage />)} />
      <Route path="/profile" element={page(<ProfilePage />)} />
      <Route path="/tokens" element={page(<ServiceTokensPage />)} />
      <Route path="/settings" element={page(<SettingsPage />)} />
      <Route path="*" element={page(<NotFound />)} />
    </Routes>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <AppRoutes />
    </BrowserRouter>
  );
}
