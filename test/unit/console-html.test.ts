// The console's HTML templates (console/html.ts): every interpolated value is escaped unless it is markup made by
// `html` or `raw` itself; arrays are joined, null, undefined and false render nothing.
import { describe, expect, it } from '@jest/globals';
import { escapeHtml, html, raw, type Html } from '../../console/html.ts';

const HOSTILE = `<img src=x onerror="alert('x')">\`&`;
const HOSTILE_ESCAPED = '&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&#96;&amp;';

describe('escapeHtml', () => {
  it('when a string holds each of & < > " \' and `, then each becomes its entity', () => {
    expect(escapeHtml(`&<>"'\``)).toBe('&amp;&lt;&gt;&quot;&#39;&#96;');
  });

  it('when a hostile value is escaped, then no markup character is left in it', () => {
    const out = escapeHtml(HOSTILE);
    expect(out).toBe(HOSTILE_ESCAPED);
    expect(out).not.toMatch(/[<>"'`]/);
  });

  it('when the value already holds an entity, then its ampersand is escaped too (no entity smuggling)', () => {
    expect(escapeHtml('&lt;script&gt;')).toBe('&amp;lt;script&amp;gt;');
  });

  it('when the string has nothing to escape, then it comes back unchanged', () => {
    expect(escapeHtml('ACC_100 paid 12.50 EUR in eu-west')).toBe('ACC_100 paid 12.50 EUR in eu-west');
  });
});

describe('html templates', () => {
  it('when a string is interpolated, then it is escaped in text and in a quoted attribute', () => {
    const out = html`<p title="${HOSTILE}">${HOSTILE}</p>`.text;
    expect(out).toBe(`<p title="${HOSTILE_ESCAPED}">${HOSTILE_ESCAPED}</p>`);
  });

  it('when the value is markup made by html, then it is inserted as is, while its own values stay escaped', () => {
    const inner = html`<b>${HOSTILE}</b>`;
    expect(html`<p>${inner}</p>`.text).toBe(`<p><b>${HOSTILE_ESCAPED}</b></p>`);
  });

  it('when the value is raw markup, then it is inserted as is', () => {
    expect(html`<p>${raw('<br>')}</p>`.text).toBe('<p><br></p>');
  });

  it('when the value is an array, then its items are joined without separators, each escaped or kept by its kind', () => {
    const out = html`<ul>${['<a>', html`<li>${'b&c'}</li>`, ['<nested>', 1]]}</ul>`.text;
    expect(out).toBe('<ul>&lt;a&gt;<li>b&amp;c</li>&lt;nested&gt;1</ul>');
  });

  it('when the value is null, undefined or false, then nothing is rendered; 0, true and the empty string render as text', () => {
    expect(html`[${null}][${undefined}][${false}]`.text).toBe('[][][]');
    expect(html`[${0}][${true}][${''}]`.text).toBe('[0][true][]');
  });

  it('when an object from outside looks like markup (a text field), then it is not trusted', () => {
    // JSON cannot carry the module's symbol: parsed data can never pass as safe markup.
    const forged = JSON.parse('{"text":"<script>alert(1)</script>"}') as Html;
    const out = html`<p>${forged}</p>`.text;
    expect(out).not.toContain('<script>');
    expect(out).toBe('<p>[object Object]</p>');
  });

  it('when a template has no values, then its text is the literal', () => {
    expect(html`<hr>`.text).toBe('<hr>');
  });
});
