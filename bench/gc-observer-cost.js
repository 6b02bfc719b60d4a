// What a `gc` PerformanceObserver (the one `leakhound watch` installs) costs
// per GC: alternating 3-second phases without and with an observer, each
// allocating short-lived garbage as fast as it can (thousands of scavenges
// per second, run with --max-semi-space-size=1). The work done per CPU
// millisecond drops by the observer's cost; divided by the GCs observed,
// that is the cost of one GC entry. Prints one JSON line.
'use strict';
const { PerformanceObserver } = require('perf_hooks');

function work(ms) {
  const end = Date.now() + ms;
  let done = 0;
  while (Date.now() < end) {
    const a = [];
    for (let i = 0; i < 1000; i++) a.push({ i });
    done += a.length;
  }
  return done;
}

function phase(observe) {
  return new Promise((resolve) => {
    let obs = null;
    let gcs = 0;
    if (observe) {
      obs = new PerformanceObserver((list) => { gcs += list.getEntries().length; });
      obs.observe({ entryTypes: ['gc'] });
    }
    const c0 = process.cpuUsage();
    const t0 = Date.now();
    let done = 0;
    (function step() {
      done += work(5);
      if (Date.now() - t0 < 3000) return setImmediate(step);
      const c = process.cpuUsage(c0);
      if (obs) obs.disconnect();
      resolve({ cpuMs: (c.user + c.system) / 1000, done, gcs });
    })();
  });
}

(async () => {
  const rounds = Number(process.argv[2] || 4);
  const costs = [];
  for (let r = 0; r < rounds; r++) {
    const off = await phase(false);
    const on = await phase(true);
    // CPU the observed phase would have needed without the observer.
    const plainMs = on.done / (off.done / off.cpuMs);
    costs.push(((on.cpuMs - plainMs) * 1000) / on.gcs);
  }
  costs.sort((a, b) => a - b);
  console.log(JSON.stringify({ node: process.version, us_per_gc_median: costs[Math.floor(costs.length / 2)], us_per_gc: costs }));
})();
