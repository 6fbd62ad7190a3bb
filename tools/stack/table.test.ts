import { describe, expect, it } from 'vitest';
import { renderTable } from './table.ts';

describe('renderTable', () => {
  it('aligns columns to the widest cell and trims trailing space', () => {
    const out = renderTable(['A', 'LONGER'], [
      ['xyz', '1'],
      ['q', 'two'],
    ]);
    expect(out.split('\n')).toEqual(['A    LONGER', '---  ------', 'xyz  1', 'q    two']);
  });
});
