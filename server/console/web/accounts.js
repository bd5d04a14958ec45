// The Service Accounts screen: the list (name, description, enabled switch, token count, last
// used, delete), and the "Add New" dialog.
import * as api from './api.js';
import {h, clear, icon, formatTime, field, announce} from './dom.js';
import {openModal, confirmDialog} from './modal.js';
import {openAccount} from './account.js';
import {escalationText, missingByModel} from './errors.js';

export async function renderAccounts(main, session) {
  const canCreate = session.can('serviceaccount', 'create');
  const tbody = h('tbody');
  const section = h('section', {class: 'screen', 'aria-labelledby': 'accounts-title'},
    h('div', {class: 'screen-head'},
      h('h1', {id: 'accounts-title'}, 'Service Accounts'),
      canCreate ? h('button', {type: 'button', class: 'primary', onclick: () => addNew(session, refresh)}, 'Add New') : null),
    h('p', {class: 'lead'}, 'Applications that call your API with their own API access tokens.'),
    h('table', {class: 'grid accounts'},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Name'), h('th', {scope: 'col'}, 'Description'), h('th', {scope: 'col'}, 'Enabled'),
        h('th', {scope: 'col'}, 'Tokens'), h('th', {scope: 'col'}, 'Last used'),
        h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Actions')))),
      tbody));
  clear(main).append(section);

  async function refresh() {
    const accounts = await api.getAll('/v1/service-accounts');
    clear(tbody);
    if (!accounts.length) {
      tbody.append(h('tr', {}, h('td', {colspan: 6, class: 'empty'}, 'No service accounts yet.')));
    }
    for (const account of accounts) tbody.append(row(account));
  }

  function row(account) {
    const toggle = h('input', {type: 'checkbox', role: 'switch', class: 'switch', checked: account.enabled,
      'aria-label': `Enabled ${account.name}`, disabled: !session.can('serviceaccount', 'update')});
    const rowError = h('span', {class: 'field-error', role: 'alert'});
    toggle.addEventListener('change', async () => {
      const enabled = toggle.checked;
      rowError.textContent = '';
      toggle.disabled = true;
      try {
        await api.patch(`/v1/service-accounts/${api.enc(account.id)}`, {enabled});
        announce(`${account.name} ${enabled ? 'enabled' : 'disabled'}.`);
      } catch (err) {
        toggle.checked = !enabled;
        rowError.textContent = err.status === 403 && err.missing.length ? escalationText(err) : err.message;
      } finally {
        toggle.disabled = false;
      }
    });
    const remove = session.can('serviceaccount', 'delete')
      ? h('button', {type: 'button', class: 'icon-button danger-icon', 'aria-label': `Delete ${account.name}`,
        title: `Delete ${account.name}`,
        onclick: async () => {
          const yes = await confirmDialog({
            title: `Delete ${account.name}?`,
            message: `The service account and its ${account.token_count} token(s) are deleted; ` +
              'calls with those tokens are refused at once. Its request history stays.'});
          if (!yes) return;
          try {
            await api.del(`/v1/service-accounts/${api.enc(account.id)}`);
            announce(`${account.name} deleted.`);
            await refresh();
          } catch (err) {
            rowError.textContent = err.message;
          }
        }}, icon('bin'))
      : null;
    return h('tr', {},
      h('td', {}, h('button', {type: 'button', class: 'link', onclick: () => openAccount(account.id, session, refresh)}, account.name)),
      h('td', {class: 'description'}, account.description),
      h('td', {}, h('label', {class: 'switch-wrap'}, toggle, h('span', {class: 'switch-track', 'aria-hidden': 'true'}))),
      h('td', {class: 'num'}, String(account.token_count)),
      h('td', {}, formatTime(account.last_used_at, 'Never')),
      h('td', {class: 'row-actions'}, remove, rowError));
  }

  await refresh();
}

async function addNew(session, refresh) {
  const [accounts, roles] = await Promise.all([
    api.getAll('/v1/service-accounts'), api.get('/v1/roles')]);
  openModal({
    title: 'Add New Service Account',
    className: 'add-new',
    build: (body, close) => {
      const name = field('Name', h('input', {type: 'text', name: 'name', autocomplete: 'off', required: true, autofocus: true}),
        'Letters, digits, ".", "_" or "-"; unique in your organisation.');
      const description = field('Description', h('textarea', {name: 'description', rows: 2}));
      const radio = (value, label, checked) => h('label', {class: 'radio'},
        h('input', {type: 'radio', name: 'copy-kind', value, checked}), label);
      const accountSelect = field('Service account to copy',
        h('select', {name: 'source-account'}, accounts.map((a) => h('option', {value: a.name}, a.name))));
      const roleSelect = field('Role to copy',
        h('select', {name: 'source-role'}, roles.items.map((r) => h('option', {value: r.name}, r.name))));
      accountSelect.wrap.hidden = true;
      roleSelect.wrap.hidden = true;
      const kinds = h('fieldset', {class: 'copy-from'},
        h('legend', {}, 'Copy permissions from'),
        radio('scratch', 'Start from scratch', true),
        radio('service_account', 'Service account', false),
        radio('role', 'Role', false),
        accountSelect.wrap, roleSelect.wrap);
      const kind = () => kinds.querySelector('input[name=copy-kind]:checked').value;
      const roleHint = h('p', {class: 'hint', 'aria-live': 'polite'});
      const showKind = () => {
        accountSelect.wrap.hidden = kind() !== 'service_account';
        roleSelect.wrap.hidden = kind() !== 'role';
        const role = roles.items.find((r) => r.name === roleSelect.control.value);
        roleHint.textContent = kind() === 'role' && role ? role.description : '';
        roleHint.hidden = !roleHint.textContent;
      };
      kinds.addEventListener('change', showKind);
      kinds.append(roleHint);
      if (!accounts.length) kinds.querySelector('input[value=service_account]').disabled = true;
      showKind();
      const formError = h('div', {class: 'form-error', role: 'alert'});
      const form = h('form', {class: 'stack'}, name.wrap, description.wrap, kinds, formError,
        h('div', {class: 'actions'},
          h('button', {type: 'button', class: 'secondary', onclick: () => close()}, 'Cancel'),
          h('button', {type: 'submit', class: 'primary'}, 'Create')));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        name.error('');
        description.error('');
        clear(formError);
        const from = {kind: kind()};
        if (from.kind === 'service_account') from.name = accountSelect.control.value;
        if (from.kind === 'role') from.name = roleSelect.control.value;
        try {
          const created = await api.post('/v1/service-accounts', {
            name: name.control.value.trim(), description: description.control.value, copy_permissions_from: from});
          close();
          announce(`${created.name} created.`);
          await refresh();
          openAccount(created.id, session, refresh);
        } catch (err) {
          showCreateError(err, {name, description}, formError);
        }
      });
      body.append(form);
    },
  });
}

function showCreateError(err, fields, formError) {
  if (err.field === 'name') return fields.name.error(err.message);
  if (err.field === 'description') return fields.description.error(err.message);
  if (err.status === 403 && err.missing.length) {
    const lines = missingByModel(err);
    formError.append(h('p', {}, `Refused: the new account would hold ${err.missing.length} permission(s) you do not hold ` +
      `yourself, on ${lines.length} model(s):`),
    h('ul', {class: 'missing', 'aria-label': 'Permissions you lack', tabindex: '0'}, lines.map((l) => h('li', {}, l))));
    return;
  }
  formError.append(h('p', {}, err.message));
}
