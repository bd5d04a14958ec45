// The account dialog, named by the account, with three tabs: INFO (description and tokens),
// PERMISSIONS (the catalog grid, the rules and a YAML view) and LOGS (the request history).
import * as api from './api.js';
import {h, clear, icon, formatTime, field, announce} from './dom.js';
import {openModal, confirmDialog} from './modal.js';
import {escalationText} from './errors.js';

export async function openAccount(id, session, onChange) {
  const account = await api.get(`/v1/service-accounts/${api.enc(id)}`);
  openModal({
    title: account.name,
    className: 'account-dialog',
    onClose: () => { onChange().catch(() => {}); },
    build: (body) => {
      const tabs = [
        {label: 'INFO', render: (panel) => renderInfo(panel, account, session)},
        {label: 'PERMISSIONS', render: (panel) => renderPermissions(panel, account, session)},
        {label: 'LOGS', render: (panel) => renderLogs(panel, account, session)},
      ];
      const tablist = h('div', {role: 'tablist', class: 'tabs', 'aria-label': `${account.name} sections`});
      const panels = [];
      tabs.forEach((tab, i) => {
        const tabEl = h('button', {type: 'button', role: 'tab', id: `tab-${i}`, 'aria-controls': `panel-${i}`,
          'aria-selected': i === 0 ? 'true' : 'false', tabindex: i === 0 ? '0' : '-1'}, tab.label);
        const panel = h('div', {role: 'tabpanel', id: `panel-${i}`, 'aria-labelledby': tabEl.id, tabindex: '0',
          class: 'tabpanel', hidden: i !== 0});
        tab.el = tabEl;
        tab.panel = panel;
        tabEl.addEventListener('click', () => select(i));
        tablist.append(tabEl);
        panels.push(panel);
      });
      const select = (i) => {
        tabs.forEach((tab, j) => {
          tab.el.setAttribute('aria-selected', i === j ? 'true' : 'false');
          tab.el.tabIndex = i === j ? 0 : -1;
          tab.panel.hidden = i !== j;
        });
        tabs[i].el.focus();
        if (!tabs[i].loaded) {
          tabs[i].loaded = true;
          tabs[i].render(tabs[i].panel).catch((err) => tabs[i].panel.append(h('p', {class: 'form-error', role: 'alert'}, err.message)));
        }
      };
      tablist.addEventListener('keydown', (e) => {
        const i = tabs.findIndex((t) => t.el === document.activeElement);
        if (i < 0) return;
        const next = {ArrowRight: (i + 1) % 3, ArrowLeft: (i + 2) % 3, Home: 0, End: 2}[e.key];
        if (next !== undefined) { e.preventDefault(); select(next); }
      });
      body.append(tablist, ...panels);
      tabs[0].loaded = true;
      tabs[0].render(tabs[0].panel);
    },
  });
}

// ---- INFO ----------------------------------------------------------------------------------

async function renderInfo(panel, account, session) {
  const canUpdate = session.can('serviceaccount', 'update');
  const description = field('Description', h('textarea', {rows: 3, value: account.description, disabled: !canUpdate}));
  const saved = h('span', {class: 'saved', 'aria-live': 'polite'});
  const form = h('form', {class: 'stack'}, description.wrap,
    canUpdate ? h('div', {class: 'actions start'}, h('button', {type: 'submit', class: 'primary'}, 'Save'), saved) : null);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    description.error('');
    saved.textContent = '';
    try {
      const after = await api.patch(`/v1/service-accounts/${api.enc(account.id)}`, {description: description.control.value});
      account.description = after.description;
      saved.textContent = 'Saved.';
    } catch (err) {
      description.error(err.message);
    }
  });
  const tbody = h('tbody');
  const tokensError = h('p', {class: 'form-error', role: 'alert'});
  panel.append(h('dl', {class: 'facts'},
    h('dt', {}, 'ID'), h('dd', {class: 'mono'}, account.id),
    h('dt', {}, 'Created'), h('dd', {}, formatTime(account.created_at)),
    h('dt', {}, 'Last used'), h('dd', {}, formatTime(account.last_used_at, 'Never'))),
  form,
  h('div', {class: 'section-head'}, h('h3', {id: 'tokens-title'}, 'API Access Tokens'),
    canUpdate ? h('button', {type: 'button', class: 'primary', onclick: () => generateToken(account, refresh)}, 'Generate New Token') : null),
  h('table', {class: 'grid tokens', 'aria-labelledby': 'tokens-title'},
    h('thead', {}, h('tr', {}, ['Name', 'Prefix', 'Created', 'Last used', 'Expires'].map((c) => h('th', {scope: 'col'}, c)),
      h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Actions')))),
    tbody),
  tokensError);

  async function refresh() {
    const tokens = (await api.get(`/v1/service-accounts/${api.enc(account.id)}/tokens`)).items;
    clear(tbody);
    if (!tokens.length) tbody.append(h('tr', {}, h('td', {colspan: 6, class: 'empty'}, 'No tokens.')));
    for (const t of tokens) {
      tbody.append(h('tr', {},
        h('td', {}, t.name), h('td', {class: 'mono'}, t.prefix), h('td', {}, formatTime(t.created_at)),
        h('td', {}, formatTime(t.last_used_at, 'Never')), h('td', {}, formatTime(t.expires_at, 'Never')),
        h('td', {class: 'row-actions'}, canUpdate ? h('button', {type: 'button', class: 'icon-button danger-icon',
          'aria-label': `Delete token ${t.name}`, title: `Delete token ${t.name}`,
          onclick: async () => {
            const yes = await confirmDialog({title: `Delete token ${t.name}?`,
              message: 'Calls with this token are refused at once. The account and its other tokens are not affected.'});
            if (!yes) return;
            tokensError.textContent = '';
            try {
              await api.del(`/v1/service-accounts/${api.enc(account.id)}/tokens/${api.enc(t.id)}`);
              announce(`Token ${t.name} deleted.`);
              await refresh();
            } catch (err) {
              tokensError.textContent = err.message;
            }
          }}, icon('bin')) : null)));
    }
  }
  await refresh();
}

// The plaintext exists only in this dialog's input and in the local `token` below; closing the
// dialog empties the input, removes the dialog from the DOM and drops the variable.
function generateToken(account, refresh) {
  let token = null;
  let out = null;
  openModal({
    title: 'Generate New Token',
    className: 'token-dialog',
    onClose: () => {
      if (out) out.value = '';
      out = null;
      token = null;
      refresh().catch(() => {});
    },
    build: (body, close) => {
      const name = field('Token name', h('input', {type: 'text', autocomplete: 'off', required: true, autofocus: true}));
      const expires = field('Expires', h('input', {type: 'date'}), 'Optional. The token stops working at the end of that day (UTC).');
      const formError = h('div', {class: 'form-error', role: 'alert'});
      const form = h('form', {class: 'stack'}, name.wrap, expires.wrap, formError,
        h('div', {class: 'actions'},
          h('button', {type: 'button', class: 'secondary', onclick: () => close()}, 'Cancel'),
          h('button', {type: 'submit', class: 'primary'}, 'Generate')));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        name.error('');
        expires.error('');
        clear(formError);
        const request = {name: name.control.value.trim()};
        if (expires.control.value) request.expires_at = `${expires.control.value}T23:59:59Z`;
        try {
          const created = await api.post(`/v1/service-accounts/${api.enc(account.id)}/tokens`, request);
          token = created.token;
          showToken(created);
        } catch (err) {
          if (err.field === 'name') name.error(err.message);
          else if (err.field === 'expires_at') expires.error(err.message);
          else formError.append(h('p', {}, err.status === 403 && err.missing.length ? escalationText(err) : err.message));
        }
      });
      body.append(form);

      function showToken(created) {
        out = h('input', {type: 'text', readonly: true, class: 'mono token-value', id: 'token-value', autocomplete: 'off',
          spellcheck: 'false', 'aria-describedby': 'token-warning'});
        out.value = token;
        const copied = h('span', {class: 'saved', 'aria-live': 'polite'});
        const copy = h('button', {type: 'button', class: 'secondary', onclick: async () => {
          try {
            await navigator.clipboard.writeText(token);
          } catch {
            out.select();
            document.execCommand('copy');
          }
          copied.textContent = 'Copied.';
        }}, icon('copy'), 'Copy');
        const done = h('button', {type: 'button', class: 'primary', onclick: () => close()}, 'Done');
        clear(body).append(
          h('p', {}, `Token "${created.name}" for ${account.name} (${created.prefix}), `,
            created.expires_at ? `expires ${formatTime(created.expires_at)}.` : 'no expiry.'),
          h('div', {class: 'field'}, h('label', {for: 'token-value'}, 'API Access Token'),
            h('div', {class: 'token-row'}, out, copy)),
          h('p', {id: 'token-warning', class: 'warning', role: 'alert'},
            'Copy this token now: it will not be shown again. warden keeps only a hash of it.'),
          h('div', {class: 'actions'}, copied, done));
        out.focus();
        out.select();
      }
    },
  });
}

// ---- PERMISSIONS ---------------------------------------------------------------------------

async function renderPermissions(panel, account, session) {
  const canUpdate = session.can('serviceaccount', 'update');
  const path = `/v1/service-accounts/${api.enc(account.id)}/permissions`;
  let doc = await api.get(path);
  const models = session.catalog.models;
  const columns = [];
  for (const m of models) for (const a of m.actions) if (!columns.includes(a)) columns.push(a);

  const provenance = h('p', {class: 'provenance'});
  const rowErrors = new Map();  // model -> error cell
  const boxes = new Map();  // "model action" -> checkbox
  const tbody = h('tbody');
  for (const m of models) {
    const err = h('span', {class: 'field-error', id: `perm-err-${m.name}`});
    rowErrors.set(m.name, err);
    tbody.append(h('tr', {},
      h('th', {scope: 'row'}, m.name),
      columns.map((a) => {
        if (!m.actions.includes(a)) return h('td', {class: 'na'});
        const box = h('input', {type: 'checkbox', 'aria-label': `${m.name} ${a}`, disabled: !canUpdate,
          'aria-describedby': err.id});
        boxes.set(`${m.name} ${a}`, box);
        return h('td', {}, box);
      }),
      h('td', {class: 'row-error'}, err)));
  }
  const rulesBox = h('div', {class: 'rules'});
  const formError = h('div', {class: 'form-error', role: 'alert'});
  const saved = h('span', {class: 'saved', 'aria-live': 'polite'});
  const form = h('form', {class: 'stack'},
    h('div', {class: 'grid-scroll'}, h('table', {class: 'grid perms', 'aria-label': 'Permissions by model and action'},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Model'), columns.map((a) => h('th', {scope: 'col'}, a)),
        h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Errors')))),
      tbody)),
    formError,
    canUpdate ? h('div', {class: 'actions start'}, h('button', {type: 'submit', class: 'primary'}, 'Save'), saved) : null);

  const yamlButton = h('button', {type: 'button', class: 'secondary', 'aria-expanded': 'false'}, 'Edit as YAML');
  const yamlBox = h('div', {class: 'yaml', hidden: true});
  panel.append(provenance, form, h('div', {class: 'section-head'}, h('h3', {}, 'Rules'), yamlButton), rulesBox, yamlBox);

  function show() {
    const from = doc.copied_from || {};
    provenance.textContent = from.kind === 'role' ? `Copied from the role ${from.name} (policy revision ${from.revision || '—'}).`
      : from.kind === 'service_account' ? `Copied from the service account ${from.name} (policy revision ${from.revision || '—'}).`
        : 'Started from scratch.';
    provenance.append(` Version ${doc.version}.`);
    for (const [key, box] of boxes) {
      const [model, action] = key.split(' ');
      const held = doc.permissions[model] || doc.permissions['*'] || [];
      box.checked = held.includes(action) || held.includes('*');
    }
    clear(rulesBox);
    if (!doc.rules.length) rulesBox.append(h('p', {class: 'hint'}, 'No rules beyond the grid. Rules with conditions are edited as YAML.'));
    else {
      rulesBox.append(h('ul', {class: 'rule-list'}, doc.rules.map((r, i) => h('li', {id: `rule-${i}`},
        h('span', {class: `effect ${r.effect}`}, r.effect), ' ', h('strong', {}, r.name), ': ',
        `${r.models.join(', ')} · ${r.actions.join(', ')}`,
        r.when ? h('code', {class: 'when'}, `when ${r.when}`) : null,
        h('span', {class: 'field-error', id: `rule-err-${i}`})))));
    }
  }
  show();

  function clearErrors() {
    clear(formError);
    saved.textContent = '';
    for (const err of rowErrors.values()) err.textContent = '';
    for (const box of boxes.values()) box.removeAttribute('aria-invalid');
    for (const el of rulesBox.querySelectorAll('.field-error')) el.textContent = '';
  }

  // An error names its field: "permissions.company[1]" beside company's row, "rules[0].when"
  // beside that rule; a refused escalation marks each permission the caller lacks.
  function showErrors(err) {
    if (err.status === 403 && err.missing.length) {
      formError.append(h('p', {}, escalationText(err)));
      for (const m of err.missing) {
        const cell = rowErrors.get(m.model);
        if (cell) cell.textContent = [cell.textContent, `you do not hold ${m.action}`].filter(Boolean).join('; ');
        const box = boxes.get(`${m.model} ${m.action}`);
        if (box) box.setAttribute('aria-invalid', 'true');
      }
      return;
    }
    const list = err.errors.length ? err.errors : [{field: err.field, message: err.message}];
    const unplaced = [];
    for (const e of list) {
      const f = e.field || '';
      const perm = /^permissions\.([^.[]+)/.exec(f);
      const rule = /^rules\[(\d+)\]/.exec(f);
      const target = perm ? rowErrors.get(perm[1]) : rule ? rulesBox.querySelector(`#rule-err-${rule[1]}`) : null;
      if (target) target.textContent = e.message;
      else unplaced.push(f ? `${f}: ${e.message}` : e.message);
    }
    if (unplaced.length) formError.append(...unplaced.map((m) => h('p', {}, m)));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    const permissions = {};
    for (const [key, box] of boxes) {
      if (!box.checked) continue;
      const [model, action] = key.split(' ');
      (permissions[model] ||= []).push(action);
    }
    const next = {account: doc.account, description: doc.description, permissions, rules: doc.rules};
    try {
      await api.put(path, next, {headers: {'If-Match': `"${doc.version}"`}});
      doc = await api.get(path);
      show();
      saved.textContent = 'Saved.';
    } catch (err) {
      showErrors(err);
    }
  });

  // The YAML view: the stored document as text (rules with conditions are written here);
  // compile errors are listed beside it with their line and column.
  yamlButton.addEventListener('click', async () => {
    if (!yamlBox.hidden) {
      yamlBox.hidden = true;
      yamlButton.setAttribute('aria-expanded', 'false');
      yamlButton.textContent = 'Edit as YAML';
      return;
    }
    const text = await api.get(path, {accept: 'application/yaml'});
    const area = h('textarea', {class: 'mono', rows: 16, spellcheck: 'false', disabled: !canUpdate});
    area.value = text;
    const yaml = field('Policy YAML', area);
    const errors = h('ul', {class: 'yaml-errors', 'aria-label': 'YAML errors'});
    const yamlSaved = h('span', {class: 'saved', 'aria-live': 'polite'});
    const yamlForm = h('form', {class: 'stack'}, yaml.wrap, errors,
      canUpdate ? h('div', {class: 'actions start'}, h('button', {type: 'submit', class: 'primary'}, 'Save YAML'), yamlSaved) : null);
    yamlForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      clear(errors);
      yaml.error('');
      yamlSaved.textContent = '';
      try {
        await api.call('PUT', path, {yaml: area.value, headers: {'If-Match': `"${doc.version}"`}});
        doc = await api.get(path);
        show();
        area.value = await api.get(path, {accept: 'application/yaml'});
        yamlSaved.textContent = 'Saved.';
      } catch (err) {
        if (err.errors.length) {
          yaml.error(`${err.errors.length} error(s) in the YAML:`);
          errors.append(...err.errors.map((x) => h('li', {}, x.line ? `line ${x.line}, column ${x.column}: ${x.message}` : x.message)));
        } else {
          yaml.error(err.status === 403 && err.missing.length ? escalationText(err) : err.message);
        }
      }
    });
    clear(yamlBox).append(yamlForm);
    yamlBox.hidden = false;
    yamlButton.setAttribute('aria-expanded', 'true');
    yamlButton.textContent = 'Hide YAML';
    area.focus();
  });
}

// ---- LOGS ----------------------------------------------------------------------------------

const PAGE = 20;

async function renderLogs(panel, account, session) {
  const models = session.catalog.models;
  const allowed = field('Allowed', h('select', {},
    h('option', {value: ''}, 'Any'), h('option', {value: 'true'}, 'Allowed'), h('option', {value: 'false'}, 'Denied')));
  const model = field('Model', h('select', {}, h('option', {value: ''}, 'Any'), models.map((m) => h('option', {value: m.name}, m.name))));
  const actions = [...new Set(models.flatMap((m) => m.actions))];
  const action = field('Action', h('select', {}, h('option', {value: ''}, 'Any'), actions.map((a) => h('option', {value: a}, a))));
  const since = field('From', h('input', {type: 'datetime-local', step: 1}), 'UTC');
  const until = field('To', h('input', {type: 'datetime-local', step: 1}), 'UTC');
  const filters = h('form', {class: 'filters', 'aria-label': 'Filters'},
    allowed.wrap, model.wrap, action.wrap, since.wrap, until.wrap);
  const columns = ['Time', 'Model', 'Action', 'Allowed', 'Reason', 'Rule', 'Client address', 'Method', 'Path', 'Request ID'];
  const tbody = h('tbody');
  const more = h('button', {type: 'button', class: 'secondary', hidden: true}, 'Load more');
  const error = h('p', {class: 'form-error', role: 'alert'});
  const count = h('p', {class: 'hint', 'aria-live': 'polite'});
  panel.append(filters,
    h('div', {class: 'grid-scroll'}, h('table', {class: 'grid logs', 'aria-label': 'Request history'},
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {scope: 'col'}, c)))), tbody)),
    count, error, h('div', {class: 'actions start'}, more));

  let cursor = '';
  let shown = 0;
  let generation = 0;  // a newer load (changed filters) discards the answer of an older one
  const utc = (local) => (local ? `${local.length === 16 ? `${local}:00` : local}Z` : '');
  async function load(reset) {
    error.textContent = '';
    for (const f of [since, until]) f.error('');
    if (reset) { cursor = ''; shown = 0; }
    const mine = ++generation;
    const q = new URLSearchParams({limit: String(PAGE)});
    if (cursor) q.set('cursor', cursor);
    if (allowed.control.value) q.set('allowed', allowed.control.value);
    if (model.control.value) q.set('model', model.control.value);
    if (action.control.value) q.set('action', action.control.value);
    if (since.control.value) q.set('since', utc(since.control.value));
    if (until.control.value) q.set('until', utc(until.control.value));
    try {
      const page = await api.get(`/v1/service-accounts/${api.enc(account.id)}/logs?${q}`);
      if (mine !== generation) return;
      if (reset) clear(tbody);
      for (const d of page.items) {
        const ctx = d.context || {};
        tbody.append(h('tr', {class: d.allowed ? 'allowed' : 'denied'},
          h('td', {class: 'nowrap'}, formatTime(d.time)), h('td', {}, d.model), h('td', {}, d.action),
          h('td', {}, h('span', {class: `badge ${d.allowed ? 'ok' : 'no'}`}, d.allowed ? 'Allowed' : 'Denied')),
          h('td', {}, d.reason), h('td', {class: 'mono'}, d.rule || '—'), h('td', {}, ctx.client_addr || '—'),
          h('td', {}, ctx.method || '—'), h('td', {class: 'mono'}, ctx.path || '—'), h('td', {class: 'mono'}, ctx.request_id || '—')));
      }
      shown += page.items.length;
      if (!shown) tbody.append(h('tr', {}, h('td', {colspan: columns.length, class: 'empty'}, 'No requests match.')));
      cursor = page.next_cursor || '';
      more.hidden = !cursor;
      count.textContent = `${shown} request(s) shown${cursor ? '; more are available' : ''}.`;
    } catch (err) {
      if (err.field === 'since') since.error(err.message);
      else if (err.field === 'until') until.error(err.message);
      else error.textContent = err.message;
    }
  }
  filters.addEventListener('change', () => load(true));
  filters.addEventListener('submit', (e) => { e.preventDefault(); load(true); });
  more.addEventListener('click', () => load(false));
  await load(true);
}
