//! `--html FILE`: one self-contained HTML page per command (no network
//! fetches, opens from disk, prints). Charts are SVG drawn here; the only
//! script is a few lines that sort a table by a clicked header.
//!
//! Every text that comes from a heap snapshot or the app (class names,
//! edge names, paths, URLs) goes through [`esc`]: names like `<anonymous>`
//! or `Map<K,V>` are common, and a string in the heap can be anything.

pub mod allocations;
pub mod container;
pub mod flame;
pub mod github;
pub mod html;
pub mod junit;
pub mod svg;
pub mod text;

use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::Path;

/// Escape text for element content and quoted attribute values, in HTML
/// and XML alike (the JUnit report uses it too): `&#39;` is valid in both,
/// and the characters XML 1.0 forbids (control characters other than tab,
/// newline and carriage return; U+FFFE, U+FFFF) become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// Unix seconds as `2024-05-01 12:34:56 UTC`.
pub fn utc_text(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A page being built: a header of facts, then sections.
pub struct Page {
    title: String,
    facts: Vec<(String, String)>,
    body: String,
}

impl Page {
    pub fn new(title: &str) -> Page {
        Page { title: title.to_string(), facts: Vec::new(), body: String::new() }
    }

    /// A fact in the header (`Command`, `Node`, `Started`...); the value is escaped.
    pub fn fact(&mut self, name: &str, value: &str) {
        self.facts.push((name.to_string(), esc(value)));
    }

    /// A section with a heading; `html` is trusted markup built by this module.
    pub fn section(&mut self, id: &str, heading: &str, html: &str) {
        let _ = write!(self.body, "<section id=\"{}\"><h2>{}</h2>\n{}\n</section>\n", esc(id), esc(heading), html);
    }

    pub fn finish(self) -> String {
        let mut o = String::with_capacity(self.body.len() + 8192);
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"generator\" content=\"leakhound {}\">\
             <title>{}</title><style>{}</style></head><body>\n<header><h1>{}</h1><dl class=\"facts\">",
            env!("CARGO_PKG_VERSION"),
            esc(&self.title),
            STYLE,
            esc(&self.title)
        );
        for (k, v) in &self.facts {
            let _ = write!(o, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), v);
        }
        o.push_str("</dl></header>\n<main>\n");
        o.push_str(&self.body);
        let _ = write!(
            o,
            "</main><footer>Written by leakhound {} — a self-contained page: no network, no external files.</footer>\n<script>{}</script>\n</body></html>\n",
            env!("CARGO_PKG_VERSION"),
            SORT_SCRIPT
        );
        o
    }
}

/// Write the page to `FILE.part` (mode 0600), then rename it into place: a
/// reader never sees half a report. Says where on stderr.
pub fn write_page(path: &Path, html: &str) -> Result<()> {
    // 0600: the page quotes heap strings (retainer keys, string values).
    inspector::private::write_file(path, html.as_bytes()).context("cannot write the HTML report")?;
    eprintln!("leakhound: wrote {}", path.display());
    Ok(())
}

/// Fail early: check, before any work, that an output file can be written
/// (its folder exists and takes a new file; it is not a folder), so that a
/// long run does not end on a typo'd path with its report lost. `flag`
/// names the option (`--html`).
pub fn check_output(path: &Path, flag: &str) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        anyhow::bail!("{flag} {shown}: that is a directory; give a file name");
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        anyhow::bail!("{flag} {shown}: the directory {} does not exist", parent.display());
    }
    // Creating (and removing) a file is the only sure test of permissions.
    if let Err(e) = tempfile::Builder::new().prefix(".leakhound-check-").tempfile_in(parent) {
        anyhow::bail!("{flag} {shown}: cannot write in {} ({})", parent.display(), crate::output::io_reason(&e));
    }
    Ok(())
}

/// Sort a `table.sortable` by the clicked header: numbers by the cell's
/// `data-v`, text otherwise; a second click reverses.
const SORT_SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach((th,i)=>th.addEventListener('click',()=>{\
const b=th.closest('table').tBodies[0],up=th.dataset.dir!=='asc';th.closest('tr').querySelectorAll('th').forEach(h=>delete h.dataset.dir);th.dataset.dir=up?'asc':'desc';\
const k=r=>{const c=r.cells[i];return c.dataset.v!==undefined?+c.dataset.v:c.textContent};\
[...b.rows].sort((p,q)=>{const x=k(p),y=k(q),c=typeof x==='number'?x-y:String(x).localeCompare(y);return up?c:-c}).forEach(r=>b.appendChild(r))}));";

const STYLE: &str = r#"
:root{--fg:#1d2430;--muted:#5b6575;--line:#d5dae1;--bg:#fff;--card:#f7f8fa;--used:#1f5fbf;--total:#8a94a6;--rss:#d9731a;--floor:#15803d;--trend:#c62828;--leak:#b42318;--ok:#15803d;--warn:#a15c00}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1100px;padding:18px 22px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:0 0 6px}h3.second{margin-top:14px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.facts{display:flex;flex-wrap:wrap;gap:4px 22px;margin:0}.facts div{display:flex;gap:6px}.facts dt{color:var(--muted)}.facts dd{margin:0;font-weight:500}
.verdict{font-size:16px;padding:10px 14px;border-radius:6px;border-left:6px solid var(--muted);background:var(--card);margin:12px 0}
.verdict.leak{border-color:var(--leak)}.verdict.no-leak{border-color:var(--ok)}.verdict.inconclusive{border-color:var(--warn)}
.verdict b{text-transform:uppercase;letter-spacing:.03em}
.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:#eceff3}.chart .axisline,.chart .tick{stroke:#9aa3af}.chart .axis{font-size:11px;fill:var(--muted)}
.chart .band0{fill:#eef2f8}.chart .band1{fill:#e3e9f3}.chart .bandlabel{font-size:10px;fill:var(--muted)}
.chart .mark line{stroke:#6b4fbb;stroke-dasharray:3 3}.chart .mark text{font-size:10px;fill:#6b4fbb}
.chart .series{fill:none;stroke-width:1.6;stroke-linejoin:round}
.series.used{stroke:var(--used)}.series.total{stroke:var(--total)}.series.rss{stroke:var(--rss)}.series.floor{stroke:var(--floor);stroke-width:2}
.series.trend{stroke:var(--trend);stroke-dasharray:7 4;stroke-width:2}.series.size{stroke:var(--used);stroke-width:2}
.dot{fill:var(--floor)}.dot.size{fill:var(--used)}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:4px 0 0 78px}
.sw{display:inline-block;width:18px;height:0;border-top:3px solid;vertical-align:middle;margin-right:5px}
.sw.used{border-color:var(--used)}.sw.total{border-color:var(--total)}.sw.rss{border-color:var(--rss)}.sw.floor{border-color:var(--floor)}.sw.size{border-color:var(--used)}
.sw.trend{border-top:3px dashed var(--trend)}.sw.bandsw{height:10px;border:0;background:#e3e9f3}.sw.marksw{border-top:2px dashed #6b4fbb}
.cards{display:grid;gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:var(--card);break-inside:avoid}
.card .pattern{display:inline-block;font-size:11px;padding:1px 7px;border-radius:10px;background:#fde8e7;color:var(--leak);margin-right:6px;vertical-align:middle}
.card .acc{font-size:15px}.card dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:8px 0 0}.card dt{color:var(--muted)}.card dd{margin:0}
.bars rect{fill:var(--leak)}.bars text{font-size:9.5px;fill:var(--muted)}
.path{display:flex;flex-wrap:wrap;align-items:center;gap:4px 0;margin:0;padding:0;list-style:none}
.path li{display:flex;align-items:center}
.path .node{border:1px solid var(--line);background:#fff;border-radius:5px;padding:1px 6px}
.path .node.accumulator{border-color:var(--leak);box-shadow:0 0 0 1px var(--leak)}
.path .edge{color:var(--muted);padding:0 4px;white-space:nowrap}.path .edge code{color:#6b4fbb}
.advice{margin:8px 0 0;padding:8px 10px;border-radius:6px;background:#fff;border-left:4px solid var(--ok)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}table.sortable th:after{content:" \2195";color:#b3bac5}
table.sortable th[data-dir=asc]:after{content:" \2191";color:var(--fg)}table.sortable th[data-dir=desc]:after{content:" \2193";color:var(--fg)}
.pos{color:var(--leak)}.neg{color:var(--ok)}.muted{color:var(--muted)}
.note{color:var(--muted);font-size:12.5px}
footer{margin-top:28px;color:var(--muted);font-size:12px}
@media print{
 body{max-width:none;padding:0;font-size:11px}
 .card,.verdict{background:#fff}.chart .band0{fill:#f1f1f1}.chart .band1{fill:#e6e6e6}
 section{break-inside:avoid-page}table{break-inside:auto}tr{break-inside:avoid}
 table.sortable th:after{content:""}
 a{color:inherit;text-decoration:none}
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_from_the_heap() {
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(esc("Map<K,V>\u{1}"), "Map&lt;K,V&gt;\u{fffd}");
        assert_eq!(esc("a\tb\r\nc\u{ffff}"), "a\tb\r\nc\u{fffd}");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
