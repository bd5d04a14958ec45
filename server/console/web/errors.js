// How the API's errors read on the page.
export function escalationText(err) {
  const list = err.missing.slice(0, 8).map((m) => `${m.model} ${m.action}`).join(', ');
  const more = err.missing.length > 8 ? ` and ${err.missing.length - 8} more` : '';
  return `Refused: you do not hold ${list}${more} yourself.`;
}

// The "missing" list of a refused escalation, one line per model: "invoice: create, export".
export function missingByModel(err) {
  const byModel = new Map();
  for (const m of err.missing) {
    if (!byModel.has(m.model)) byModel.set(m.model, []);
    byModel.get(m.model).push(m.reason === 'conditional' ? `${m.action} (held only under a condition)` : m.action);
  }
  return [...byModel].map(([model, actions]) => `${model}: ${actions.join(', ')}`);
}
