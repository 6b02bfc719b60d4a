// Injected as the first script of a leakhound HTML report by
// tests/html_report.rs. It records page errors and console.error calls,
// then, after load, what a reader would see: the chart lines and how many
// points each has, the suspect cards' accumulators, whether clicking a
// header sorts the class table, and any resource the page fetched. The
// findings go into a pre element, id lh-probe, for `chromium --dump-dom`.
(function () {
  const errors = [];
  addEventListener('error', (e) => errors.push('error: ' + (e.message || e.type)), true);
  const origError = console.error;
  console.error = (...a) => { errors.push('console.error: ' + a.join(' ')); origError.apply(console, a); };
  addEventListener('load', () => {
    const r = {};
    r.paths = [...document.querySelectorAll('svg.chart path.series')].map((p) => ({
      series: p.dataset.series,
      points: (p.getAttribute('d').match(/-?\d+(?:\.\d+)?,-?\d+(?:\.\d+)?/g) || []).length,
      length: p.getTotalLength(),
      width: p.getBoundingClientRect().width,
    }));
    r.accumulators = [...document.querySelectorAll('.card .accumulator-name')].map((e) => e.textContent);
    r.cards = [...document.querySelectorAll('.card')].map((c) => c.getBoundingClientRect().height);
    r.chain = [...document.querySelectorAll('.card .path li')].map((e) => e.textContent);
    r.verdict = (document.getElementById('verdict') || {}).textContent || null;
    r.rate = (document.getElementById('rate') || {}).textContent || null;
    const t = document.getElementById('classes');
    if (t) {
      const heads = [...t.tHead.rows[0].cells];
      const col = heads.findIndex((h) => h.textContent.startsWith('# New'));
      const column = () => [...t.tBodies[0].rows].map((row) => Number(row.cells[col].dataset.v));
      heads[col].click();
      const asc = column();
      heads[col].click();
      const desc = column();
      r.sort = {
        rows: asc.length,
        ascending: asc.every((v, i) => i === 0 || asc[i - 1] <= v),
        descending: desc.every((v, i) => i === 0 || desc[i - 1] >= v),
        differs: asc.length < 2 || asc[0] !== asc[asc.length - 1],
      };
    }
    r.resources = performance.getEntriesByType('resource').map((e) => e.name);
    setTimeout(() => {
      r.errors = errors;
      const pre = document.createElement('pre');
      pre.id = 'lh-probe';
      pre.textContent = JSON.stringify(r);
      document.body.appendChild(pre);
    }, 0);
  });
})();
