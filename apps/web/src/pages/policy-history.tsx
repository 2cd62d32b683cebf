/**
 * The policy's versions, newest first (older pages on demand), each with its diff from the one
 * before, and rollback: a new version with an older version's text, confirmed first and judged by
 * the server against the current devices like any save.
 */
import { Fragment, useEffect, useState } from 'react';
import type { PolicyHistoryItem, PolicyHistoryPage, PolicyWrite } from '@weft/protocol';
import { api, query } from '../api/client.js';
import { Empty, ErrorText, when } from '../components/common.js';
import { ConfirmDialog } from '../components/dialog.js';

export const HISTORY_PAGE = 20;

export function Diff({ diff }: { diff: string }) {
  if (!diff) return <p className="hint">No change in the text.</p>;
  return (
    <pre className="diff">
      {diff.split('\n').map((l, i) => (
        <span key={i} className={l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : l.startsWith('@@') ? 'hunk' : undefined}>
          {l}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

export function PolicyHistory(props: { active: number; dirty: boolean; refresh: number; onRolledBack: (w: PolicyWrite) => void }) {
  const [items, setItems] = useState<PolicyHistoryItem[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  const [rollback, setRollback] = useState<PolicyHistoryItem | null>(null);

  const load = async (before?: number) => {
    setError(null);
    try {
      const page = await api<PolicyHistoryPage>('GET', `/api/v1/policy/history${query({ limit: HISTORY_PAGE, before })}`);
      setItems((old) => (before === undefined ? page.items : [...(old ?? []), ...page.items]));
      setNext(page.next);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  useEffect(() => {
    void load();
  }, [props.refresh]);

  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      <ErrorText error={error} />
      {items && items.length === 0 ? (
        <Empty>No versions yet: saving a policy makes version 1, and every later save adds one here.</Empty>
      ) : (
        <div className="table-wrap">
          <table data-testid="policy-history" aria-busy={items === null}>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Author</th>
                <th scope="col">Saved</th>
                <th scope="col">Change</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {items?.map((v) => (
                <Fragment key={v.version}>
                  <tr data-version={v.version}>
                    <td>
                      {v.version}
                      {v.version === props.active && <span className="tag">active</span>}
                      {v.restoredFrom !== null && <span className="sub">restored from {v.restoredFrom}</span>}
                    </td>
                    <td>
                      {v.author.label}
                      <span className="sub">{v.author.origin}</span>
                    </td>
                    <td>{when(v.createdAt)}</td>
                    <td>
                      <span className="add">+{v.added}</span> <span className="del">−{v.removed}</span>
                    </td>
                    <td className="actions">
                      <button type="button" aria-expanded={open === v.version} aria-controls={`diff-${v.version}`} onClick={() => setOpen(open === v.version ? null : v.version)} aria-label={`${open === v.version ? 'Hide' : 'Show'} diff of version ${v.version}`}>
                        {open === v.version ? 'Hide diff' : 'Diff'}
                      </button>
                      <button type="button" disabled={v.version === props.active} onClick={() => setRollback(v)} aria-label={`Roll back to version ${v.version}`}>
                        Roll back
                      </button>
                    </td>
                  </tr>
                  {open === v.version && (
                    <tr id={`diff-${v.version}`}>
                      <td colSpan={5} className="diff-cell">
                        <Diff diff={v.diff} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next !== null && (
        <div className="pager">
          <button type="button" onClick={() => void load(next)}>
            Older versions
          </button>
        </div>
      )}
      {rollback && (
        <ConfirmDialog
          title={`Roll back to version ${rollback.version}?`}
          body={
            <>
              <p>
                This saves version {rollback.version}'s text as a new version; version {props.active} and everything before it stay in the history. The server checks it against the current devices first and refuses it if it no longer fits them.
              </p>
              {props.dirty && <p className="error">Your unsaved edits in the editor are discarded.</p>}
            </>
          }
          confirm={`Roll back to version ${rollback.version}`}
          danger
          onConfirm={async () => {
            const w = await api<PolicyWrite>('POST', '/api/v1/policy/rollback', { version: rollback.version }, { 'if-match': `"${props.active}"` });
            props.onRolledBack(w);
          }}
          onClose={() => setRollback(null)}
        />
      )}
    </section>
  );
}
