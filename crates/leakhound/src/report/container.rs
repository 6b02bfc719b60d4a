//! The container lines of `watch` and `run` (text and HTML).

use crate::live;
use crate::model::container::WatchContainer;
use container::doctor;

/// The lines `watch` prints (and its HTML shows) for the container.
pub fn watch_lines(w: &WatchContainer) -> Vec<String> {
    use container::doctor::size;
    let mut out = Vec::new();
    out.push(match (w.container_limit_bytes, w.charge_bytes) {
        (Some(l), Some(c)) => format!("container:  memory limit {}, charge {} ({} left)", size(l), size(c), size(l.saturating_sub(c))),
        (Some(l), None) => format!("container:  memory limit {}", size(l)),
        (None, _) => "container:  no memory limit".to_string(),
    });
    if let (Some(which), Some(s)) = (w.first_limit, w.time_to_first_limit_s) {
        let other = match which {
            "heap" => w.time_to_container_limit_s.map(|c| format!("; the container limit in {}", live::human_duration(c))),
            _ => w.time_to_heap_limit_s.map(|h| format!("; the heap limit in {}", live::human_duration(h))),
        };
        out.push(format!(
            "first limit: the {which} limit, in about {} at the current rates{}",
            live::human_duration(s),
            other.unwrap_or_default()
        ));
    }
    if let Some(d) = &w.gc_drift {
        out.push(format!("gc drift:   {d}"));
    }
    if let Some(d) = &w.external_growth {
        out.push(format!("external:   {d}"));
    }
    for l in doctor::finding_lines(&container::Assessment {
        findings: w.findings.clone(),
        recommended_max_old_space_size_mb: None,
        rule: String::new(),
        headroom_bytes: None,
    }) {
        out.push(format!("doctor:     {l}"));
    }
    if let Some(mb) = w.recommended_max_old_space_size_mb {
        out.push(format!("doctor:     recommended --max-old-space-size={mb} (`leakhound doctor` shows the rule)"));
    }
    out
}
