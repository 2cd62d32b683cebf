/**
 * The list pages' table: sticky header (style.css), one row per item, `aria-busy` while a load
 * runs, and the empty state instead of the table once a load answered with nothing. `rows`
 * undefined = nothing loaded yet (the header shows, no empty state).
 */
import type { ReactNode } from 'react';
import { Empty } from './common.js';

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
  className?: string;
}

export function DataTable<T>(props: { columns: Column<T>[]; rows: T[] | undefined; rowKey: (row: T) => string | number; loading: boolean; empty: ReactNode; testId?: string }) {
  if (props.rows && props.rows.length === 0) return <Empty>{props.empty}</Empty>;
  return (
    <div className="table-wrap">
      <table aria-busy={props.loading} data-testid={props.testId}>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th scope="col" key={c.header}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows?.map((row) => (
            <tr key={props.rowKey(row)}>
              {props.columns.map((c) => (
                <td key={c.header} className={c.className}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
