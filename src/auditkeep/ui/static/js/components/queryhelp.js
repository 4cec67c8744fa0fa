// The query syntax cheat sheet shown by the "?" button beside the query bar.

import { h } from '../dom.js';

const EXAMPLES = [
  ['alice', 'free text: every word must occur (not in personal fields)'],
  ['"disk full"', 'a phrase'],
  ['action:orders.delete', 'a field equals a value (actor: is actor.id, resource: is resource.id)'],
  ['action:iam.*', 'wildcards: * any run, ? one character'],
  ['outcome:(failure OR denied)', 'any of several values'],
  ['metadata.amount:>1000', 'comparisons: > >= < <='],
  ['time:[2026-11-01 TO 2026-11-02]', 'ranges, [ ] inclusive and { } exclusive'],
  ['_exists_:actor.impersonator', 'the field is present'],
  ['a AND b, a OR b, NOT a, -a', 'combine; AND is implied between terms; ( ) groups'],
  ['raw.verb:delete', 'fields of a source’s original object, under raw.'],
];

export function queryHelp() {
  return [
    h('p', { class: 'popover-title' }, 'Query syntax'),
    h('dl', { class: 'syntax' }, EXAMPLES.flatMap(([code, what]) => [h('dt', {}, h('code', {}, code)), h('dd', {}, what)])),
    h('p', { class: 'hint' }, 'Press / to focus the query, Enter to run, Escape to close this.'),
  ];
}
