// A link's redirect rules in the link's edit form: an ordered list of rules, each a target and the
// conditions (kind and value) that must all hold for a visitor to be sent there (docs/links.md).
// The API checks everything again and names the field of a mistake.
import type { RedirectCondition, RedirectRule } from '../api/types';

export const MAX_RULES = 10;
export const MAX_CONDITIONS = 5;

export type ConditionKind = 'device' | 'os' | 'language' | 'country';

/** A condition as the form holds it: a kind and its value. */
export interface ConditionRow {
  kind: ConditionKind;
  value: string;
}

export interface RuleRow {
  conditions: ConditionRow[];
  targetUrl: string;
}

const KINDS: { kind: ConditionKind; label: string }[] = [
  { kind: 'device', label: 'Device' },
  { kind: 'os', label: 'Operating system' },
  { kind: 'language', label: 'Browser language' },
  { kind: 'country', label: 'Country' },
];

/** The values the API takes for the kinds that have a fixed list. */
const CHOICES: Partial<Record<ConditionKind, string[]>> = {
  device: ['mobile', 'tablet', 'desktop', 'bot'],
  os: ['android', 'ios', 'windows', 'macos', 'linux', 'chromeos'],
};

const firstValue = (kind: ConditionKind) => CHOICES[kind]?.[0] ?? '';

export function toRows(rules: RedirectRule[] | undefined): RuleRow[] {
  return (rules ?? []).map((r) => ({
    targetUrl: r.targetUrl,
    conditions: r.conditions.map((c) => {
      const [kind, value] = Object.entries(c)[0] as [ConditionKind, string];
      return { kind, value };
    }),
  }));
}

export function fromRows(rows: RuleRow[]): RedirectRule[] {
  return rows.map((r) => ({
    targetUrl: r.targetUrl.trim(),
    conditions: r.conditions.map((c) => ({ [c.kind]: c.value.trim() }) as RedirectCondition),
  }));
}

export function RulesEditor({ id, rows, onChange }: { id: string; rows: RuleRow[]; onChange: (rows: RuleRow[]) => void }) {
  const setRule = (i: number, rule: RuleRow) => onChange(rows.map((r, k) => (k === i ? rule : r)));
  const setCondition = (i: number, j: number, c: ConditionRow) =>
    setRule(i, { ...rows[i], conditions: rows[i].conditions.map((d, k) => (k === j ? c : d)) });
  return (
    <fieldset class="rules">
      <legend>Redirect rules</legend>
      <small class="hint">
        Tried in order: a visitor goes to the target of the first rule whose conditions all hold, else to the link’s
        target.
      </small>
      <ol>
        {rows.map((rule, i) => {
          const rid = `${id}-rule-${i}`;
          return (
            <li key={i} aria-label={`Rule ${i + 1}`}>
              {rule.conditions.map((c, j) => {
                const cid = `${rid}-c${j}`;
                const choices = CHOICES[c.kind];
                return (
                  <div class="row" key={j}>
                    <div class="field">
                      <label for={`${cid}-kind`}>{`Rule ${i + 1} condition ${j + 1}`}</label>
                      <select
                        id={`${cid}-kind`}
                        value={c.kind}
                        onChange={(e) => {
                          const kind = e.currentTarget.value as ConditionKind;
                          setCondition(i, j, { kind, value: firstValue(kind) });
                        }}
                      >
                        {KINDS.map((k) => (
                          <option value={k.kind}>{k.label}</option>
                        ))}
                      </select>
                    </div>
                    <div class="field">
                      <label for={`${cid}-value`}>{`Rule ${i + 1} condition ${j + 1} value`}</label>
                      {choices ? (
                        <select
                          id={`${cid}-value`}
                          value={c.value}
                          onChange={(e) => setCondition(i, j, { ...c, value: e.currentTarget.value })}
                        >
                          {choices.map((v) => (
                            <option value={v}>{v}</option>
                          ))}
                        </select>
                      ) : (
                        <input
                          id={`${cid}-value`}
                          required
                          placeholder={c.kind === 'language' ? 'fr or pt-BR' : 'FR'}
                          pattern={c.kind === 'language' ? '[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?' : '[A-Z]{2}'}
                          value={c.value}
                          onInput={(e) => setCondition(i, j, { ...c, value: e.currentTarget.value })}
                        />
                      )}
                    </div>
                    {rule.conditions.length > 1 && (
                      <button
                        type="button"
                        class="secondary"
                        aria-label={`Remove condition ${j + 1} of rule ${i + 1}`}
                        onClick={() => setRule(i, { ...rule, conditions: rule.conditions.filter((_, k) => k !== j) })}
                      >
                        Remove condition
                      </button>
                    )}
                  </div>
                );
              })}
              <div class="row">
                <div class="field">
                  <label for={`${rid}-target`}>{`Rule ${i + 1} target URL`}</label>
                  <input
                    id={`${rid}-target`}
                    type="url"
                    required
                    value={rule.targetUrl}
                    onInput={(e) => setRule(i, { ...rule, targetUrl: e.currentTarget.value })}
                  />
                </div>
              </div>
              {rule.conditions.length < MAX_CONDITIONS && (
                <button
                  type="button"
                  class="secondary"
                  aria-label={`Add a condition to rule ${i + 1}`}
                  onClick={() => setRule(i, { ...rule, conditions: [...rule.conditions, { kind: 'language', value: '' }] })}
                >
                  Add condition
                </button>
              )}{' '}
              <button
                type="button"
                class="secondary"
                aria-label={`Remove rule ${i + 1}`}
                onClick={() => onChange(rows.filter((_, k) => k !== i))}
              >
                Remove rule
              </button>
            </li>
          );
        })}
      </ol>
      {rows.length < MAX_RULES && (
        <button
          type="button"
          class="secondary"
          onClick={() => onChange([...rows, { conditions: [{ kind: 'device', value: 'mobile' }], targetUrl: '' }])}
        >
          Add a redirect rule
        </button>
      )}
    </fieldset>
  );
}
