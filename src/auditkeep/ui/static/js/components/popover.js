// A button that opens a panel: Escape or a click elsewhere closes it, focus returns to the button.

import { h } from '../dom.js';

let openOne = null;

export function popover(label, content, { id, className = '' } = {}) {
  const panel = h('div', { class: `popover ${className}`, id, hidden: true, role: 'dialog', 'aria-label': label });
  const button = h('button', { type: 'button', class: 'quiet', 'aria-expanded': 'false', 'aria-controls': id }, label);
  const close = (refocus = true) => {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (openOne === close) openOne = null;
    if (refocus) button.focus();
  };
  const open = () => {
    if (openOne) openOne(false);
    panel.replaceChildren(...[typeof content === 'function' ? content(close) : content].flat());
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    openOne = close;
    (panel.querySelector('input, button, select, a[href]') ?? panel).focus();
  };
  button.addEventListener('click', () => (panel.hidden ? open() : close()));
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      close();
    }
  });
  return { button, panel, close, wrap: h('div', { class: 'popover-wrap' }, button, panel) };
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && openOne) openOne();
});
document.addEventListener('pointerdown', (e) => {
  if (openOne && !e.target.closest('.popover-wrap')) openOne(false);
});
