// The Users screen (people: list, add with roles, enable/disable) and the Tenant screen (the
// analytics tenant token, shown and rotated).
import * as api from './api.js';
import {h, clear, formatTime, field, announce} from './dom.js';
import {openModal, confirmDialog} from './modal.js';
import {escalationText} from './errors.js';

export async function renderUsers(main, session) {
  const tbody = h('tbody');
  const canCreate = session.can('user', 'create');
  clear(main).append(h('section', {class: 'screen', 'aria-labelledby': 'users-title'},
    h('div', {class: 'screen-head'}, h('h1', {id: 'users-title'}, 'Users'),
      canCreate ? h('button', {type: 'button', class: 'primary', onclick: () => addUser(session, refresh)}, 'Add User') : null),
    h('p', {class: 'lead'}, 'Team members who log in to this console. Service accounts are not users and are not listed here.'),
    h('table', {class: 'grid users'},
      h('thead', {}, h('tr', {}, ['Email', 'Name', 'Roles', 'Enabled', 'Created'].map((c) => h('th', {scope: 'col'}, c)),
        h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Errors')))),
      tbody)));

  async function refresh() {
    const users = await api.getAll('/v1/users');
    clear(tbody);
    for (const u of users) {
      const err = h('span', {class: 'field-error', role: 'alert'});
      const self = u.id === session.me.id;
      const toggle = h('input', {type: 'checkbox', role: 'switch', class: 'switch', checked: u.enabled,
        'aria-label': `Enabled ${u.email}`, disabled: self || !session.can('user', 'update')});
      toggle.addEventListener('change', async () => {
        const enabled = toggle.checked;
        err.textContent = '';
        try {
          await api.patch(`/v1/users/${api.enc(u.id)}`, {enabled});
          announce(`${u.email} ${enabled ? 'enabled' : 'disabled'}.`);
        } catch (e) {
          toggle.checked = !enabled;
          err.textContent = e.status === 403 && e.missing.length ? escalationText(e) : e.message;
        }
      });
      tbody.append(h('tr', {},
        h('td', {}, u.email, self ? h('span', {class: 'badge'}, 'you') : null), h('td', {}, u.name),
        h('td', {}, u.roles.join(', ')),
        h('td', {}, h('label', {class: 'switch-wrap'}, toggle, h('span', {class: 'switch-track', 'aria-hidden': 'true'}))),
        h('td', {}, formatTime(u.created_at)), h('td', {}, err)));
    }
  }
  await refresh();
}

async function addUser(session, refresh) {
  const roles = (await api.get('/v1/roles')).items;
  openModal({
    title: 'Add User',
    build: (body, close) => {
      const email = field('Email', h('input', {type: 'email', autocomplete: 'off', required: true, autofocus: true}));
      const name = field('Display name', h('input', {type: 'text', autocomplete: 'off'}));
      const password = field('Password', h('input', {type: 'password', autocomplete: 'new-password'}),
        'At least 8 characters. The person can log in with it.');
      const roleError = h('p', {class: 'field-error', id: 'roles-error'});
      const roleSet = h('fieldset', {class: 'roles', 'aria-describedby': roleError.id}, h('legend', {}, 'Roles'),
        roles.map((r) => h('label', {class: 'check'}, h('input', {type: 'checkbox', value: r.name}), r.name,
          h('span', {class: 'hint'}, ` ${r.description}`))),
        roleError);
      const formError = h('div', {class: 'form-error', role: 'alert'});
      const form = h('form', {class: 'stack'}, email.wrap, name.wrap, password.wrap, roleSet, formError,
        h('div', {class: 'actions'},
          h('button', {type: 'button', class: 'secondary', onclick: () => close()}, 'Cancel'),
          h('button', {type: 'submit', class: 'primary'}, 'Create')));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        for (const f of [email, name, password]) f.error('');
        roleError.textContent = '';
        clear(formError);
        const chosen = [...roleSet.querySelectorAll('input:checked')].map((i) => i.value);
        if (!chosen.length) { roleError.textContent = 'Choose at least one role.'; return; }
        const request = {email: email.control.value.trim(), name: name.control.value, roles: chosen};
        if (password.control.value) request.password = password.control.value;
        try {
          const created = await api.post('/v1/users', request);
          password.control.value = '';
          close();
          announce(`${created.email} added.`);
          await refresh();
        } catch (err) {
          const target = {email, name, password}[err.field];
          if (target) target.error(err.message);
          else if (err.field === 'role' || err.field === 'roles') roleError.textContent = err.message;
          else formError.append(h('p', {}, err.status === 403 && err.missing.length ? escalationText(err) : err.message));
        }
      });
      body.append(form);
    },
  });
}

export async function renderTenant(main, session) {
  const tenant = await api.get('/v1/tenant');
  const token = h('input', {type: 'text', readonly: true, class: 'mono token-value', id: 'tenant-token', spellcheck: 'false',
    'aria-describedby': 'tenant-note'});
  token.value = tenant.tenant_token;
  const error = h('p', {class: 'form-error', role: 'alert'});
  const rotate = h('button', {type: 'button', class: 'danger', disabled: !session.can('serviceaccount', 'update'),
    onclick: async () => {
      const yes = await confirmDialog({title: 'Rotate the tenant token?', confirmLabel: 'Rotate',
        message: 'A new token replaces this one at once; analytics calls with the old token are refused.'});
      if (!yes) return;
      error.textContent = '';
      try {
        const after = await api.post('/v1/tenant/token:rotate', {});
        token.value = after.tenant_token;
        announce('The tenant token was rotated.');
      } catch (err) {
        error.textContent = err.message;
      }
    }}, 'Rotate token');
  const analytics = tenant.analytics || session.catalog.analytics;
  clear(main).append(h('section', {class: 'screen', 'aria-labelledby': 'tenant-title'},
    h('div', {class: 'screen-head'}, h('h1', {id: 'tenant-title'}, 'Tenant')),
    h('dl', {class: 'facts'}, h('dt', {}, 'Name'), h('dd', {}, tenant.name), h('dt', {}, 'Created'), h('dd', {}, formatTime(tenant.created_at))),
    h('div', {class: 'field'}, h('label', {for: token.id}, 'Tenant token'), h('div', {class: 'token-row'}, token, rotate)),
    h('p', {id: 'tenant-note', class: 'note'},
      `This token is for the analytics endpoint only: it may create ${analytics.join(' and ')} events and nothing else. ` +
      'Use service accounts and their API access tokens for everything else.'),
    error));
}
