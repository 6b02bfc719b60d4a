//! Meeting the user halfway: `@id` as DevTools shows it, a class name as
//! leakhound prints it (`onTick()`), near-miss suggestions, and a hint when
//! the `--` before the app's command is missing.

/// An object id as typed: `114879` or `@114879` (the form DevTools and
/// leakhound print).
pub fn parse_object_id(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let t = t.strip_prefix('@').unwrap_or(t);
    t.parse::<u32>().map_err(|_| format!("`{s}` is not an object id (a number, e.g. 114879 or @114879)"))
}

/// The forms of a class name the user may have copied from our output:
/// as given, and without a printed `()` (functions) or `class ` prefix.
pub fn class_variants(name: &str) -> Vec<String> {
    let t = name.trim();
    let mut out = vec![t.to_string()];
    let bare = t.strip_prefix("class ").unwrap_or(t);
    let bare = bare.strip_suffix("()").unwrap_or(bare).trim();
    if bare != t && !bare.is_empty() {
        out.push(bare.to_string());
    }
    if !t.ends_with(')') {
        out.push(format!("{bare}()"));
    }
    out
}

/// The function name in `onTick`, `onTick()` or `onTick() app.js:12`.
pub fn function_name(q: &str) -> &str {
    let t = q.trim();
    match t.find("()") {
        Some(i) => t[..i].trim(),
        None => t,
    }
}

/// Edit distance over chars, case-insensitive, a swap of two neighbours
/// counting as one edit (`rnu` → `run`): optimal string alignment.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Up to three `candidates` close to `wanted` (a typo away, or containing
/// it), closest first.
pub fn near<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let w = wanted.to_lowercase();
    let limit = (wanted.chars().count() / 3).clamp(1, 4);
    let mut scored: Vec<(usize, String)> = candidates
        .filter(|c| !c.is_empty())
        .filter_map(|c| {
            let d = distance(wanted, c);
            let contains = c.len() >= 3 && (c.to_lowercase().contains(&w) || w.contains(&c.to_lowercase()));
            (d <= limit || contains).then(|| (if contains { d.min(limit) } else { d }, c.to_string()))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// ` (did you mean `a`, `b`?)` or nothing.
pub fn did_you_mean(options: &[String]) -> String {
    if options.is_empty() {
        return String::new();
    }
    let list: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
    format!(" (did you mean {}?)", list.join(", "))
}

/// The commands that start an app after `--`.
const TAKES_A_COMMAND: &[&str] = &["run", "snapshot", "watch", "handles", "listeners", "allocations", "supervise"];

/// Parse the command line; on an unexpected argument to a command that
/// runs an app, and no `--` on the line, add how to write it.
pub fn parse_cli<T: clap::Parser>() -> T {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match T::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand)
            {
                e.exit()
            }
            let sub = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
            let no_dashdash = !args.iter().any(|a| a == "--");
            let mut tip = None;
            if e.kind() == ErrorKind::UnknownArgument && no_dashdash && TAKES_A_COMMAND.contains(&sub) {
                tip = Some(format!("  tip: the app's command goes after `--`, e.g. leakhound {sub} [OPTIONS] -- node app.js"));
            }
            // clap suggests close subcommands, but not every transposition
            // (`rnu`): add ours when it gave none.
            if e.kind() == ErrorKind::InvalidSubcommand && !e.render().to_string().contains("tip:") {
                let cmd = T::command();
                let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                if let Some(best) = near(sub, names.into_iter()).first() {
                    tip = Some(format!("  tip: a similar subcommand exists: '{best}'"));
                }
            }
            usage_error(&e, tip.as_deref())
        }
    }
}

/// A usage error in the one error style (`leakhound: error: …`, as every
/// other error), clap's usage lines and tips below it; exit 2.
fn usage_error(e: &clap::Error, tip: Option<&str>) -> ! {
    let text = e.render().to_string();
    let mut out = format!("leakhound: {}", text.trim_end());
    if let Some(tip) = tip {
        out.push_str("\n\n");
        out.push_str(tip);
    }
    eprintln!("{out}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_classes_and_near_misses() {
        assert_eq!(parse_object_id("@114879").unwrap(), 114879);
        assert_eq!(parse_object_id("114879").unwrap(), 114879);
        assert!(parse_object_id("@x").is_err());
        assert_eq!(class_variants("onTick()"), vec!["onTick()".to_string(), "onTick".to_string()]);
        assert_eq!(class_variants("onTick"), vec!["onTick".to_string(), "onTick()".to_string()]);
        let names = ["LogEntry", "Logger", "Object", "Array"];
        assert_eq!(near("LogEntyr", names.iter().copied()), vec!["LogEntry".to_string()]);
        assert!(near("Zebra", names.iter().copied()).is_empty());
        assert_eq!(near("rnu", ["run", "load", "node", "diff"].into_iter()), vec!["run".to_string()]);
    }
}
