//! No verdict without evidence: did the load exercise the app?
//!
//! Why: "no leak" means "the code the load ran did not leak". When the
//! load never ran (no `--load`), or most of it was answered with errors
//! (a typo'd path gives 8,000 × 404 from the router, not from the handler
//! under test), that sentence says nothing about the app, and a green CI
//! gate on it is worse than none. So `run` calls such a run inconclusive,
//! names the status codes, and says what to check.

use crate::output::int;
use loadgen::LoadReport;

/// How the load was set up on the command line.
pub struct LoadSetup<'a> {
    /// The `--load` URLs (empty without).
    pub urls: &'a [String],
    /// `--load-cmd` was given (its responses are not seen).
    pub command: bool,
}

/// Why the run's load is no evidence, or `None` when it is: no load at
/// all, or most answered requests not 2xx. `rounds` are the built-in
/// driver's reports (warm-up first).
pub fn missing(setup: &LoadSetup, rounds: &[LoadReport]) -> Option<String> {
    if setup.command {
        return None;
    }
    if setup.urls.is_empty() {
        return Some(
            "no load ran (no --load), so the request handlers never ran: pass --load /path (a path of the app's, on $PORT) \
             or --load-cmd 'your load tool'"
                .to_string(),
        );
    }
    let ok: u64 = rounds.iter().map(|r| r.ok).sum();
    let non: u64 = rounds.iter().map(|r| r.non_2xx).sum();
    let errors: u64 = rounds.iter().map(|r| r.errors).sum();
    let answered = ok + non;
    if answered == 0 {
        return Some(format!(
            "the load never reached the app: {} requests, none answered; check that it listens on {}",
            int(errors),
            setup.urls[0]
        ));
    }
    // Most answers not 2xx: the handlers under test mostly did not run.
    if non * 2 > answered {
        let mut codes: std::collections::BTreeMap<u16, u64> = Default::default();
        for r in rounds {
            for (c, n) in &r.status_codes {
                *codes.entry(*c).or_default() += n;
            }
        }
        let mut by_count: Vec<(u16, u64)> = codes.into_iter().filter(|(c, _)| !(200..300).contains(c)).collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<String> = by_count.iter().take(3).map(|(c, n)| format!("{} × {c}", int(*n))).collect();
        let hint = match by_count.first().map(|x| x.0) {
            Some(404) => "check the --load path",
            Some(401 | 403) => "the app refused the requests: add the credentials it needs (-H 'Authorization: ...')",
            Some(405) => "check the method (-m POST?)",
            Some(400 | 415 | 422) => "check the request body and headers (-b, -H 'Content-Type: ...')",
            Some(c) if c >= 500 => "the app failed the requests: check its stderr",
            _ => "check the --load URL",
        };
        return Some(format!(
            "{} of {} responses were not 2xx ({}): the load did not exercise the code under test; {hint} (try: curl -i {})",
            int(non),
            int(answered),
            shown.join(", "),
            setup.urls[0]
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_load_and_no_urls_is_no_evidence_but_a_command_is_trusted() {
        let none = LoadSetup { urls: &[], command: false };
        assert!(missing(&none, &[]).unwrap().starts_with("no load ran"));
        let cmd = LoadSetup { urls: &[], command: true };
        assert!(missing(&cmd, &[]).is_none());
    }
}
