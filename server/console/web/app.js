// The console's entry: the login screen, the account menu (the avatar, bottom right) and the
// screens it leads to. What a person may open follows GET /v1/auth/me's `permissions` (what
// the engine allows them); the API still decides every call.
import * as api from './api.js';
import {h, clear, announce} from './dom.js';
import {renderAccounts} from './accounts.js';
import {renderUsers, renderTenant} from './admin.js';

const main = document.getElementById('main');
const menuRoot = document.getElementById('account-menu-root');
let session = null;  // {me, catalog}

function can(model, action) {
  return Boolean(session && (session.me.permissions[model] || []).includes(action));
}

const SCREENS = [
  {hash: '#/service-accounts', label: 'Service Accounts', allowed: () => can('serviceaccount', 'view'), render: renderAccounts},
  {hash: '#/users', label: 'Users', allowed: () => can('user', 'view'), render: renderUsers},
  // The tenant token acts as the tenant: shown only to whoever holds what it grants.
  {hash: '#/tenant', label: 'Tenant',
    allowed: () => can('serviceaccount', 'view') && session.catalog.analytics.every((m) => can(m, 'create')),
    render: renderTenant},
];

function renderLogin(message) {
  session = null;
  clear(menuRoot);
  const email = h('input', {id: 'login-email', type: 'email', name: 'email', autocomplete: 'username', required: true, autofocus: true});
  const password = h('input', {id: 'login-password', type: 'password', name: 'password', autocomplete: 'current-password', required: true});
  const error = h('p', {class: 'form-error', role: 'alert'}, message || '');
  const form = h('form', {class: 'login card', 'aria-labelledby': 'login-title'},
    h('h1', {id: 'login-title'}, 'Log in to warden'),
    h('div', {class: 'field'}, h('label', {for: email.id}, 'Email'), email),
    h('div', {class: 'field'}, h('label', {for: password.id}, 'Password'), password),
    error,
    h('button', {type: 'submit', class: 'primary'}, 'Log in'),
    h('p', {class: 'hint'}, 'For team members. Service accounts never log in: they call the API with their tokens.'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      await api.login(email.value, password.value);
      password.value = '';
      await start();
    } catch (err) {
      error.textContent = err.status === 401 ? 'Wrong email or password.' : err.message;
    }
  });
  clear(main).append(form);
  email.focus();
}

async function start() {
  const [me, catalog] = await Promise.all([api.get('/v1/auth/me'), api.get('/v1/catalog')]);
  session = {me, catalog, can};
  renderMenu();
  const first = SCREENS.find((s) => s.allowed());
  if (!SCREENS.some((s) => s.hash === location.hash && s.allowed())) {
    history.replaceState(null, '', first ? first.hash : '#/');
  }
  await route();
}

async function route() {
  if (!session) return;
  const screen = SCREENS.find((s) => s.hash === location.hash && s.allowed());
  if (!screen) {
    clear(main).append(h('section', {class: 'card empty'},
      h('h1', {}, `Welcome, ${session.me.name}`),
      h('p', {}, 'Your role does not include managing service accounts, users or the tenant. ' +
        'Ask an administrator if you need access.')));
    return;
  }
  document.title = `${screen.label} · warden`;
  await screen.render(main, session);
}

function initials(name) {
  const local = String(name).split('@')[0];
  const parts = local.split(/[._\-\s]+/).filter(Boolean);
  return ((parts[0] || '?')[0] + (parts[1] ? parts[1][0] : '')).toUpperCase();
}

// The avatar button and its menu (a menu button: Enter/Space/ArrowDown open it, arrows move,
// Escape closes and returns focus to the avatar).
function renderMenu() {
  clear(menuRoot);
  const button = h('button', {type: 'button', class: 'avatar', 'aria-label': 'Account menu',
    'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'account-menu', title: session.me.name},
  initials(session.me.name));
  const items = [];
  for (const s of SCREENS) {
    if (!s.allowed()) continue;
    items.push(h('a', {role: 'menuitem', href: s.hash, tabindex: '-1'}, s.label));
  }
  const logoutItem = h('button', {type: 'button', role: 'menuitem', tabindex: '-1'}, 'Log out');
  items.push(logoutItem);
  const menu = h('div', {id: 'account-menu', class: 'menu', role: 'menu', 'aria-label': 'Account menu', hidden: true},
    h('p', {class: 'menu-who', role: 'none'}, session.me.name),
    items);
  const open = (focusLast = false) => {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    (focusLast ? items[items.length - 1] : items[0]).focus();
  };
  const close = (refocus = true) => {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (refocus) button.focus();
  };
  button.addEventListener('click', () => (menu.hidden ? open() : close()));
  button.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); open(); }
    if (e.key === 'ArrowUp') { e.preventDefault(); open(true); }
  });
  menu.addEventListener('keydown', (e) => {
    const i = items.indexOf(document.activeElement);
    if (e.key === 'Escape') { e.preventDefault(); close(); }
    else if (e.key === 'ArrowDown') { e.preventDefault(); items[(i + 1) % items.length].focus(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
    else if (e.key === 'Home') { e.preventDefault(); items[0].focus(); }
    else if (e.key === 'End') { e.preventDefault(); items[items.length - 1].focus(); }
    else if (e.key === 'Tab') { close(false); }
    else if (e.key === ' ' && document.activeElement.tagName === 'A') { e.preventDefault(); document.activeElement.click(); }
  });
  menu.addEventListener('click', (e) => { if (e.target.closest('[role=menuitem]')) close(); });
  document.addEventListener('click', (e) => {
    if (!menu.hidden && !menu.contains(e.target) && !button.contains(e.target)) close(false);
  });
  logoutItem.addEventListener('click', async () => {
    try { await api.logout(); } catch { /* the session may already be gone */ }
    history.replaceState(null, '', '#/');
    renderLogin();
    announce('Logged out.');
  });
  menuRoot.append(h('div', {class: 'account'}, menu, button));
}

api.setUnauthenticatedHandler(() => {
  api.forgetSession();
  for (const d of document.querySelectorAll('dialog')) d.remove();
  renderLogin('Your session has ended. Log in again.');
});
window.addEventListener('hashchange', () => { route().catch(showFailure); });

function showFailure(err) {
  if (err && err.status === 401) return;
  clear(main).append(h('p', {class: 'form-error', role: 'alert'}, `Something went wrong: ${err.message}`));
}

async function boot() {
  if (!api.hasCsrf()) return renderLogin();
  try {
    await start();
  } catch (err) {
    if (err.status !== 401) showFailure(err);
  }
}
boot();
