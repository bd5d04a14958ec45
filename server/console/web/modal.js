// Modal dialogs: a native <dialog> opened with showModal() (the rest of the page is inert),
// Tab and Shift+Tab cycle inside it, Escape closes it, and focus goes back to what opened it.
// Dialogs stack (a confirmation over the account dialog); the element is removed on close, so
// nothing it showed stays in the DOM.
import {h, icon} from './dom.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), ' +
  'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

// Opens a dialog named by `title` (a string or a node used as the heading). `build(body,
// close)` fills it; `onClose` runs once whatever closes it. Returns {dialog, close}.
export function openModal({title, className = '', build, onClose, role = 'dialog'}) {
  const opener = document.activeElement;
  const heading = h('h2', {class: 'dialog-title', id: `dlg-${Math.random().toString(36).slice(2)}`}, title);
  const body = h('div', {class: 'dialog-body'});
  let closed = false;
  const dialog = h('dialog', {class: `modal ${className}`, 'aria-labelledby': heading.id, 'aria-modal': 'true'},
    h('div', {class: 'dialog-head'}, heading,
      h('button', {type: 'button', class: 'icon-button', 'aria-label': 'Close', onclick: () => close()}, icon('close'))),
    body);
  if (role !== 'dialog') dialog.setAttribute('role', role);
  const close = () => {
    if (closed) return;
    closed = true;
    if (onClose) onClose();
    if (dialog.open) dialog.close();
    dialog.remove();
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  };
  dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(); });
  dialog.addEventListener('close', () => close());
  dialog.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
      return;
    }
    if (e.key !== 'Tab') return;
    const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => !el.closest('[hidden]') && el.getClientRects().length);
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (e.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
      e.preventDefault();
      first.focus();
    }
  });
  document.body.append(dialog);
  build(body, close, dialog);
  dialog.showModal();
  const autofocus = body.querySelector('[autofocus]') || body.querySelector(FOCUSABLE);
  if (autofocus) autofocus.focus();
  return {dialog, close};
}

// A confirmation: resolves true when the person presses `confirmLabel`.
export function confirmDialog({title, message, confirmLabel = 'Delete'}) {
  return new Promise((resolve) => {
    let answer = false;
    openModal({
      title,
      role: 'alertdialog',
      className: 'confirm',
      onClose: () => resolve(answer),
      build: (body, close) => {
        body.append(h('p', {}, message),
          h('div', {class: 'actions'},
            h('button', {type: 'button', class: 'secondary', autofocus: true, onclick: () => close()}, 'Cancel'),
            h('button', {type: 'button', class: 'danger', onclick: () => { answer = true; close(); }}, confirmLabel)));
      },
    });
  });
}
