import { CellRewriter, readCell, rewriteCell } from '../../src/infra/tabular/table-reader';

/**
 * The XLSX reader's cell handling (infra/tabular/table-reader.ts, attack pass 8 F6): what exceljs is
 * shown of each `<c>` element, however the inflated sheet XML is cut into chunks, and what each kind
 * of value exceljs gives becomes.
 */
describe('XLSX cells', () => {
  const sheet = [
    '<worksheet><cols><col min="1" max="3" width="12"/></cols><sheetData>',
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" s="2"/><c r="C1" t="inlineStr"><is><r><t>张</t></r><r><rPr><b/></rPr><t xml:space="preserve">三 丰</t></r><rPh sb="0" eb="1"><t>zhang</t></rPh></is></c></row>',
    '<row r="2"><c r="A2" t="str"><f>"a"&amp;"b"</f><v>ab</v></c><c r="B2"><f>NOW()</f></c><c r="C2"><f t="shared" si="0"/><v>3</v></c><c r="D2" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>',
    '<row r="3"><c r="A3" t="d"><v>2026-09-01T07:30:00Z</v></c><c r="B3"><v></v></c><c r="C3"><f>A1</f><v/></c><c r="D3" t="b"><v>1</v></c></row>',
    '</sheetData></worksheet>',
  ].join('');
  const expected = [
    '<worksheet><cols><col min="1" max="3" width="12"/></cols><sheetData>',
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" s="2"/><c r="C1" t="inlineStr"><is><t xml:space="preserve">张三 丰</t></is></c></row>',
    '<row r="2"><c r="A2" t="str"><v>ab</v></c><c r="B2"><f>NOW()</f></c><c r="C2"><v>3</v></c><c r="D2" t="e"><v>#DIV/0!</v></c></row>',
    '<row r="3"><c r="A3" t="e"><v>#DATE:2026-09-01T07:30:00Z</v></c><c r="B3"></c><c r="C3"><f>A1</f></c><c r="D3" t="b"><v>1</v></c></row>',
    '</sheetData></worksheet>',
  ].join('');

  it('rewrites formulas with values, empty values, inline rich text and ISO dates, leaving every other cell as it was', () => {
    const r = new CellRewriter();
    expect(r.push(sheet) + r.end()).toBe(expected);
  });

  it('gives the same XML however the sheet arrives in chunks, holding back an unfinished cell or tag', () => {
    // Every cut point once, and random cuttings into many pieces.
    for (let cut = 1; cut < sheet.length; cut++) {
      const r = new CellRewriter();
      expect(r.push(sheet.slice(0, cut)) + r.push(sheet.slice(cut)) + r.end()).toBe(expected);
    }
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 200; n++) {
      const r = new CellRewriter();
      let out = '';
      for (let i = 0; i < sheet.length;) {
        const len = 1 + Math.floor(rand() * 40);
        out += r.push(sheet.slice(i, i + len));
        i += len;
      }
      expect(out + r.end()).toBe(expected);
    }
  });

  it('leaves a formula without a value for readCell to report', () => {
    expect(rewriteCell(' r="A1"', '<f>SUM(B1:B9)</f>')).toBe('<c r="A1"><f>SUM(B1:B9)</f></c>');
  });

  it('reads each kind of value exceljs gives deliberately', () => {
    const at = (iso: string) => new Date(iso);
    expect(readCell(undefined)).toEqual({ text: '' });
    expect(readCell('张三')).toEqual({ text: '张三' });
    expect(readCell(true)).toEqual({ text: 'true' });
    expect(readCell(13800000000)).toEqual({ text: '13800000000' });
    expect(readCell(Number('50011300001320000001'))).toMatchObject({ mark: { kind: 'imprecise' } });
    expect(readCell(Number.NaN)).toEqual({ text: '', mark: { kind: 'unknown' } });
    expect(readCell(at('1899-12-30T07:30:00Z'))).toEqual({ text: '07:30', mark: { kind: 'time' } });
    expect(readCell(at('1904-01-01T07:30:15Z'), true)).toEqual({ text: '07:30:15', mark: { kind: 'time' } });
    expect(readCell(at('2026-10-01T00:00:00Z'))).toEqual({ text: '2026-10-01', mark: { kind: 'date' } });
    expect(readCell(at('2026-10-01T08:05:00Z'))).toEqual({ text: '2026-10-01 08:05', mark: { kind: 'datetime' } });
    expect(readCell({ richText: [{ text: '王' }, { text: '五' }] })).toEqual({ text: '王五' });
    expect(readCell({ text: '李四', hyperlink: 'mailto:x@y' })).toEqual({ text: '李四' });
    expect(readCell({ text: { richText: [{ text: '链' }, { text: '接' }] }, hyperlink: 'http://x' } as never)).toEqual({ text: '链接' });
    expect(readCell({ error: '#N/A' } as never)).toEqual({ text: '', mark: { kind: 'error', note: '#N/A' } });
    expect(readCell({ error: '#DATE:2026-09-01' } as never)).toEqual({ text: '2026-09-01', mark: { kind: 'date' } });
    expect(readCell({ formula: 'A1' } as never)).toEqual({ text: '', mark: { kind: 'formula' } });
    expect(readCell({ sharedFormula: 'A1' } as never)).toEqual({ text: '', mark: { kind: 'formula' } });
    expect(readCell({ formula: 'A1', result: 'ab' } as never)).toEqual({ text: 'ab' });
    expect(readCell({ sharedString: 3 } as never)).toEqual({ text: '', mark: { kind: 'unknown' } });
  });
});
