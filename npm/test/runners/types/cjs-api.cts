// The CommonJS declarations: require('leakhound') and require('leakhound/test').
import leakhound = require('leakhound');
import leakTest = require('leakhound/test');

export async function check(): Promise<string> {
  const d: leakhound.DiagnoseReport = await leakhound.diagnose(['a', 'b', 'c'], { minGrowth: '64kB' });
  const r: leakTest.NoLeakReport = await leakTest.expectNoLeak(() => {}, { iterations: 10 });
  return `${d.verdict} ${r.verdict} ${leakhound.findBinary()}`;
}
