// Building the page without HTML strings: every piece of server text becomes a text node
// (textContent), never markup. h('button', {class: 'x', onclick: f, 'aria-label': 'y'}, 'text').
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'value') {
      el.value = value;
    } else if (key === 'checked') {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
const ICONS = {
  // A waste bin: lid, handle and can.
  bin: ['M3 6h18', 'M9 6V4h6v2', 'M5 6l1 14h12l1-14', 'M10 10v7', 'M14 10v7'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  copy: ['M9 9h11v11H9z', 'M5 15H4V4h11v1'],
};

// A decorative icon (aria-hidden); the control that holds it carries the accessible name.
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  for (const d of ICONS[name]) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

// "2026-12-01 23:10:05 UTC" for an RFC 3339 time; `empty` for null.
export function formatTime(value, empty = '—') {
  if (!value) return empty;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

// A labelled form field: <label for=id>text</label> + control, and an error slot the control
// is described by (errors from the server are shown beside the field they name).
let nextId = 0;
export function field(labelText, control, hint) {
  const id = control.id || `f${++nextId}`;
  control.id = id;
  const error = h('p', {class: 'field-error', id: `${id}-error`, hidden: true});
  const described = [error.id];
  let hintEl = null;
  if (hint) {
    hintEl = h('p', {class: 'hint', id: `${id}-hint`}, hint);
    described.push(hintEl.id);
  }
  control.setAttribute('aria-describedby', described.join(' '));
  const wrap = h('div', {class: 'field'}, h('label', {for: id}, labelText), control, hintEl, error);
  return {wrap, control, error: (message) => showError(error, control, message)};
}

export function showError(errorEl, control, message) {
  errorEl.textContent = message || '';
  errorEl.hidden = !message;
  if (control) {
    if (message) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
  }
}

// Announces `message` in the page's live region.
let announceTimer = 0;
export function announce(message) {
  const status = document.getElementById('status');
  status.textContent = message;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => { status.textContent = ''; }, 5000);
}
